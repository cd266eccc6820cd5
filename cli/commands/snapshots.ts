/**
 * Snapshots: `volar vms snapshot <vm> [--name s1]`, `volar vms restore <vm> --from s1
 * [--force]`, `volar vms clone <vm> <name> [--count N] [--keep-snapshot]`, and
 * `volar snapshots list|get|rm` (`volar vms create <name> --from-snapshot s1` is in vms.ts).
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { SnapshotName, type SnapshotRecord } from "../../schema/mod.ts";
import {
  CloneVm,
  CreateSnapshot,
  DeleteSnapshot,
  GetSnapshot,
  ListSnapshots,
  RestoreVm,
} from "../../schema/operations/mod.ts";
import { ageSince, formatKeyValues, formatTable } from "../format.ts";
import type { Io } from "../io.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";
import { parseName } from "./vms.ts";

/** Parses a snapshot name argument. */
export function parseSnapshotName(value: string): string {
  const result = SnapshotName.safeParse(value);
  if (!result.success) throw new InvalidArgumentError(result.error.issues[0]!.message);
  return result.data;
}

/** Parses `--count`: an integer from 1 to 16. */
function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    throw new InvalidArgumentError("must be a whole number from 1 to 16");
  }
  return n;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * `volar snapshots list` for people.
 *
 * @example
 * ```ts
 * import { snapshotTable } from "./snapshots.ts";
 * const text = snapshotTable([{ name: "s1", vm: "web", created_at: "2026-01-01T00:00:00Z",
 *   hypervisor: "qemu", kvm: false, cpu_cores: 1, memory_mb: 256, plugin: "app", image: null,
 *   bytes: 2 ** 24, save_ms: 900, files: [] }], Date.parse("2026-01-01T00:01:00Z"));
 * console.assert(text.includes("16.0 MiB") && text.includes("web"));
 * ```
 */
export function snapshotTable(list: readonly SnapshotRecord[], now: number): string {
  return formatTable(
    ["NAME", "VM", "HYPERVISOR", "SIZE", "PAUSED", "AGE"],
    list.map((s) => [
      s.name,
      s.vm,
      s.hypervisor,
      mib(s.bytes),
      `${(s.save_ms / 1000).toFixed(2)} s`,
      ageSince(s.created_at, now),
    ]),
  );
}

function snapshotDetails(s: SnapshotRecord): string {
  return formatKeyValues([
    ["name", s.name],
    ["vm", s.vm],
    ["created", s.created_at],
    ["hypervisor", `${s.hypervisor}${s.kvm ? " (KVM)" : " (TCG)"}`],
    ["resources", `${s.cpu_cores} CPU, ${s.memory_mb} MiB`],
    ["source", s.plugin ? `plugin ${s.plugin}` : s.image ? `image ${s.image}` : "-"],
    ["size", mib(s.bytes)],
    ["paused for", `${(s.save_ms / 1000).toFixed(2)} s`],
  ]) + s.files.map((f) => `  ${f.path}  ${mib(f.bytes)}  ${f.sha256}\n`).join("");
}

/** Adds `vms snapshot`, `vms restore` and the `snapshots` group. */
export function registerSnapshots(program: Command, io: Io): void {
  const vms = program.commands.find((c) => c.name() === "vms")! as unknown as Command;
  vms.command("snapshot").description(
    "save a running VM's whole state (memory, devices, writable disks); it pauses, then runs on",
  )
    .argument("<vm>", "the VM", parseName)
    .option("--name <snapshot>", "the snapshot's name (default <vm>-<UTC time>)", parseSnapshotName)
    .action(async (vm: string, flags: { name?: string }, cmd) => {
      const globals = globalFlags(cmd);
      const s = await withClient(
        globals,
        io,
        (c) => c.call(CreateSnapshot, { name: vm }, flags.name ? { snapshot: flags.name } : {}),
      );
      if (globals.json) return printJson(io, s);
      io.out(
        `Snapshot ${s.name} of ${s.vm}: ${mib(s.bytes)}, the VM was paused ` +
          `${(s.save_ms / 1000).toFixed(2)} s\n`,
      );
    });

  vms.command("restore").description("put a VM back to a snapshot of it")
    .argument("<vm>", "the VM", parseName)
    .addOption(
      new Option("--from <snapshot>", "the snapshot").argParser(parseSnapshotName)
        .makeOptionMandatory(),
    )
    .option("--force", "replace a running VM's state (it is stopped first)")
    .action(async (vm: string, flags: { from: string; force?: boolean }, cmd) => {
      const globals = globalFlags(cmd);
      const record = await withClient(
        globals,
        io,
        (c) => c.call(RestoreVm, { name: vm }, { from: flags.from, force: flags.force ?? false }),
      );
      if (globals.json) return printJson(io, record);
      io.out(`${vm} restored from ${flags.from}: ${record.state}\n`);
    });

  vms.command("clone").description(
    "fork a running VM: new VMs start where it is now (memory, processes, disks), each with " +
      "its own address, MAC, hostname and kestrel secret",
  )
    .argument("<vm>", "the running VM to clone", parseName)
    .argument("<name>", "the clone's name (with --count N: <name>-1 … <name>-N)", parseName)
    .option("--count <n>", "how many clones (1-16)", parseCount, 1)
    .option("--keep-snapshot", "keep the snapshot they resumed from (<name>-base)")
    .action(
      async (vm: string, name: string, flags: { count: number; keepSnapshot?: boolean }, cmd) => {
        const globals = globalFlags(cmd);
        const result = await withClient(
          globals,
          io,
          (c) =>
            c.call(CloneVm, { name: vm }, {
              clone: name,
              count: flags.count,
              keep_snapshot: flags.keepSnapshot ?? false,
            }),
        );
        if (globals.json) return printJson(io, result);
        for (const v of result.vms) io.out(`${v.name}  ${v.ip ?? "-"}  ${v.state}\n`);
        io.out(
          `${result.vms.length} clone${result.vms.length === 1 ? "" : "s"} of ${vm} from ` +
            `snapshot ${result.snapshot}${result.snapshot_kept ? " (kept)" : ""}\n`,
        );
      },
    );

  const group = program.command("snapshots").alias("snap").description(
    "list, show and delete VM snapshots",
  );
  group.command("list").alias("ls").description("list snapshots").action(async (_o, cmd) => {
    const globals = globalFlags(cmd);
    const list = await withClient(globals, io, (c) => c.call(ListSnapshots, {}));
    if (globals.json) return printJson(io, list);
    if (list.snapshots.length === 0) {
      io.out("No snapshots yet. Take one: volar vms snapshot <vm>\n");
      return;
    }
    io.out(snapshotTable(list.snapshots, io.now()));
  });
  group.command("get").description("show a snapshot and its files")
    .argument("<snapshot>", "the snapshot", parseSnapshotName)
    .action(async (snapshot: string, _o, cmd) => {
      const globals = globalFlags(cmd);
      const s = await withClient(globals, io, (c) => c.call(GetSnapshot, { snapshot }));
      if (globals.json) printJson(io, s);
      else io.out(snapshotDetails(s));
    });
  group.command("rm").alias("delete").description("delete a snapshot and its files")
    .argument("<snapshot>", "the snapshot", parseSnapshotName)
    .action(async (snapshot: string, _o, cmd) => {
      const globals = globalFlags(cmd);
      const s = await withClient(globals, io, (c) => c.call(DeleteSnapshot, { snapshot }));
      if (globals.json) printJson(io, s);
      else io.out(`Deleted snapshot ${s.name}\n`);
    });
}
