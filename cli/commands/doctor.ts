/**
 * `volar doctor`: can this host boot a Volant microVM? Runs on the host without volantd and
 * changes nothing. It reads volantd's config the way volantd does (`--config`, `VOLANT_CONFIG`,
 * `/etc/volant/config.yaml`, then the `VOLANT_*` overrides) and prints a checklist — KVM, each
 * hypervisor (binary, version, KVM, usable or why not) and the one the config selects, the
 * guest kernel, initramfs and runtime disk, the bridge in its namespace, free space under the
 * state dir, the Debian tools, the cgroup controllers VMM jails use, and whether volantd answers — each problem with its fix, or the
 * same as JSON with `--json`. Exit code 0 when everything needed to boot a VM is present, 1
 * otherwise (warnings do not count).
 *
 * @module
 */
import type { Command } from "commander";
import { z } from "zod";
import {
  Acceleration,
  HypervisorName as HypervisorNameSchema,
  VolantError,
} from "../../schema/mod.ts";
import {
  DEFAULT_CONFIG_PATH,
  loadConfig,
  parseConfig,
  type ResolvedConfig,
} from "../../daemon/config.ts";
import { defaultKernelFor, KERNEL_FILES } from "../../daemon/guest.ts";
import { accelCheck, accelVerdict } from "./_doctor_accel.ts";
import { type HypervisorSurvey, probeAllHypervisors } from "../../hypervisor/probe_all.ts";
import { colorEnabled, type Io } from "../io.ts";
import { paint, type Style } from "../format.ts";
import type { ApiTarget } from "../client.ts";
import { type GlobalFlags, globalFlags, printJson, resolveTarget } from "./_context.ts";
import {
  type CheckStatus,
  type DoctorCheck,
  guestChecks,
  guestFiles,
  hypervisorChecks,
  kvmCheck,
} from "./_doctor_checks.ts";
import {
  bridgeCheck,
  bridgeState,
  daemonCheck,
  daemonState,
  diskCheck,
  diskState,
  SYSTEM_DIRS,
  toolChecks,
  toolStates,
} from "./_doctor_host.ts";
import { jailCheck, jailState } from "./_doctor_jail.ts";

const Check = z.strictObject({
  id: z.string(),
  status: z.enum(["ok", "warn", "fail", "skip"]),
  title: z.string(),
  detail: z.string(),
  fix: z.string().nullable(),
});

/** What `volar doctor --json` prints. */
export const DoctorReport = z.strictObject({
  /** Everything needed to boot a VM is present (no check failed). */
  ready: z.boolean(),
  config: z.strictObject({
    path: z.string(),
    /** Whether the file exists (absent: built-in defaults). */
    found: z.boolean(),
    /** Why it could not be used (then the other checks use the defaults). */
    error: z.string().nullable(),
  }),
  kvm: z.strictObject({
    available: z.boolean(),
    path: z.string(),
    api_version: z.number().nullable(),
    reason: z.string().nullable(),
  }),
  hypervisors: z.array(z.strictObject({
    name: HypervisorNameSchema,
    available: z.boolean(),
    usable: z.boolean(),
    binary: z.string().nullable(),
    version: z.string().nullable(),
    kvm: z.boolean(),
    kernel_formats: z.array(z.enum(["bzImage", "vmlinux"])),
    reason: z.string().nullable(),
  })),
  /**
   * The accelerator guests run with and why: volantd's verdict, else the cached probe verdict
   * for the selected hypervisor and guest kernel, else none (not proven yet).
   */
  acceleration: z.strictObject({
    source: z.enum(["daemon", "cache", "none"]),
    verdict: Acceleration.nullable(),
  }),
  /** The one `hypervisor.name` selects; null when none can be used. */
  selected: HypervisorNameSchema.nullable(),
  /** The one `hypervisor.name: auto` would select. */
  auto: HypervisorNameSchema.nullable(),
  guest: z.strictObject({
    dir: z.string(),
    kernel: z.string(),
    files: z.array(z.strictObject({
      role: z.enum(["kernel", "initramfs", "runtime_disk"]),
      path: z.string(),
      exists: z.boolean(),
      size_bytes: z.number().nullable(),
    })),
  }),
  bridge: z.strictObject({
    name: z.string(),
    namespace: z.string().nullable(),
    exists: z.boolean().nullable(),
    kind: z.string().nullable(),
    up: z.boolean().nullable(),
    error: z.string().nullable(),
  }),
  disk: z.strictObject({
    dir: z.string(),
    measured: z.string(),
    free_bytes: z.number().nullable(),
    mount: z.string().nullable(),
    error: z.string().nullable(),
  }),
  tools: z.array(z.strictObject({
    name: z.string(),
    package: z.string(),
    path: z.string().nullable(),
  })),
  /** What the host offers VMM jails: the cgroup version and the delegation of its controllers. */
  jail: z.strictObject({
    enabled: z.boolean(),
    cgroup_version: z.enum(["v1", "v2"]).nullable(),
    cgroup: z.string().nullable(),
    delegated: z.array(z.string()).nullable(),
    parent: z.array(z.string()).nullable(),
    error: z.string().nullable(),
  }),
  daemon: z.strictObject({
    target: z.string(),
    reachable: z.boolean(),
    version: z.string().nullable(),
    error: z.string().nullable(),
  }),
  /** The checklist, in the order it is printed. */
  checks: z.array(Check),
});
/** What `volar doctor --json` prints. */
export type DoctorReport = z.infer<typeof DoctorReport>;

/** `volar doctor`'s own flags. */
export interface DoctorFlags {
  /** volantd's config file. */
  config?: string;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Reads the config as volantd would; on failure, the defaults plus the failure. */
async function readConfig(
  flags: DoctorFlags,
  io: Io,
): Promise<{ config: ResolvedConfig; source: DoctorReport["config"]; check: DoctorCheck }> {
  const envPath = io.env("VOLANT_CONFIG") || undefined;
  const path = flags.config ?? envPath ?? DEFAULT_CONFIG_PATH;
  const found = await isFile(path);
  try {
    const config = await loadConfig({
      ...(flags.config === undefined ? {} : { path: flags.config }),
      env: (key) => io.env(key),
    });
    const detail = found ? path : `no ${path}: the built-in defaults`;
    return {
      config,
      source: { path, found, error: null },
      check: { id: "config", status: "ok", title: "config", detail, fix: null },
    };
  } catch (err) {
    if (!(err instanceof VolantError)) throw err;
    return {
      config: parseConfig({}, () => undefined),
      source: { path, found, error: err.message },
      check: {
        id: "config",
        status: "fail",
        title: "config",
        detail: `${err.message} (the checks below use the built-in defaults)`,
        fix: found
          ? `fix ${path} (volar setup writes a valid one)`
          : "point --config or VOLANT_CONFIG at an existing file, or unset it",
      },
    };
  }
}

/**
 * The survey as the accelerator verdict corrects it: when KVM failed its probe boot, QEMU runs
 * guests under TCG whatever `/dev/kvm` answered.
 */
function provenSurvey(survey: HypervisorSurvey, verdict: Acceleration | null): HypervisorSurvey {
  if (verdict?.accel !== "tcg" || !verdict.probe || verdict.probe.ok) return survey;
  return {
    ...survey,
    hypervisors: survey.hypervisors.map((h) => (h.name === "qemu" ? { ...h, kvm: false } : h)),
  };
}

/** The daemon to ask: `--socket`/`--api`/`VOLANT_API_BASE` when given, else the config's socket. */
function daemonTarget(globals: GlobalFlags, io: Io, config: ResolvedConfig): ApiTarget {
  const explicit = globals.socket !== undefined || globals.api !== undefined ||
    !!io.env("VOLANT_API_BASE");
  return explicit ? resolveTarget(globals, io) : { kind: "unix", socket: config.api.socket };
}

/**
 * Runs every check (read-only) and returns the report `volar doctor` prints.
 *
 * @example
 * ```ts ignore
 * import { runDoctor } from "./doctor.ts";
 * const report = await runDoctor({ config: "/etc/volant/config.yaml" }, io, { json: false });
 * for (const c of report.checks) console.log(c.status, c.title, c.detail);
 * ```
 */
export async function runDoctor(
  flags: DoctorFlags,
  io: Io,
  globals: GlobalFlags,
): Promise<DoctorReport> {
  const { config, source, check: configCheck } = await readConfig(flags, io);
  const target = daemonTarget(globals, io, config);
  const configured = config.guest.default_kernel;
  const searchPath = [io.env("PATH"), SYSTEM_DIRS].filter(Boolean).join(":");
  const [survey, disk, tools, daemon, jail] = await Promise.all([
    probeAllHypervisors(
      config.hypervisor,
      configured === "auto" ? {} : { kernelFormat: KERNEL_FILES[configured].format },
    ),
    diskState(config.state_dir),
    toolStates(searchPath),
    daemonState(target),
    jailState(config),
  ]);
  // The kernel the selected hypervisor's VMs boot (`auto` follows the hypervisor).
  const kernel = defaultKernelFor(survey.selected ?? "qemu", configured);
  const [files, accel] = await Promise.all([
    guestFiles(config, kernel),
    accelVerdict(config, survey, daemon.health),
  ]);
  const bridge = bridgeState(config);
  const checks: DoctorCheck[] = [
    configCheck,
    kvmCheck(survey, config, accel.verdict),
    ...hypervisorChecks(provenSurvey(survey, accel.verdict), config),
    accelCheck(accel, survey, config),
    ...guestChecks(files, kernel),
    bridgeCheck(bridge),
    diskCheck(disk),
    ...toolChecks(tools),
    jailCheck(jail),
    daemonCheck(daemon),
  ];
  return {
    ready: checks.every((c) => c.status !== "fail"),
    config: source,
    kvm: {
      available: survey.kvm.available,
      path: survey.kvm.path,
      api_version: survey.kvm.apiVersion ?? null,
      reason: survey.kvm.reason ?? null,
    },
    hypervisors: survey.hypervisors.map((h) => ({
      name: h.name,
      available: h.available,
      usable: h.usable,
      binary: h.binary ?? null,
      version: h.version ?? null,
      kvm: h.kvm,
      kernel_formats: [...h.kernelFormats],
      reason: h.reason ?? null,
    })),
    acceleration: accel,
    selected: survey.selected,
    auto: survey.hypervisors.find((h) => h.usable)?.name ?? null,
    guest: { dir: config.guest.dir, kernel, files },
    bridge,
    disk,
    tools,
    jail,
    daemon: {
      target: daemon.target,
      reachable: daemon.reachable,
      version: daemon.health?.version ?? null,
      error: daemon.error,
    },
    checks,
  };
}

const MARKS: Record<CheckStatus, { text: string; style: Style }> = {
  ok: { text: "ok", style: "green" },
  warn: { text: "warn", style: "yellow" },
  fail: { text: "FAIL", style: "red" },
  skip: { text: "skip", style: "dim" },
};

/**
 * The human checklist: one line per check (`ok`, `warn`, `FAIL`, `skip`), its fix indented
 * below, and a verdict.
 *
 * @example
 * ```ts ignore
 * import { formatDoctor, runDoctor } from "./doctor.ts";
 * io.out(formatDoctor(await runDoctor({}, io, { json: false }), false));
 * ```
 */
export function formatDoctor(report: DoctorReport, color: boolean): string {
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines = report.checks.map((c) => {
    const mark = MARKS[c.status];
    const head = `${paint(mark.style, mark.text.padEnd(4), color)}  ${c.title.padEnd(width)}  `;
    const fix = c.fix ? `\n${" ".repeat(8 + width)}fix: ${c.fix}` : "";
    return `${head}${c.detail}${fix}`;
  });
  const failed = report.checks.filter((c) => c.status === "fail").map((c) => c.title);
  const warned = report.checks.filter((c) => c.status === "warn").length;
  const notes = warned === 0 ? "" : ` (${warned} warning${warned === 1 ? "" : "s"})`;
  const verdict = report.ready
    ? paint("green", `Ready: this host can boot a microVM${notes}.`, color)
    : paint(
      "red",
      `Not ready: fix ${failed.join(", ")} before booting a microVM${notes}.`,
      color,
    );
  return `${lines.join("\n")}\n\n${verdict}\n`;
}

/**
 * Adds the `doctor` command to `program`.
 *
 * @example
 * ```ts ignore
 * import { Command } from "commander";
 * import { registerDoctor } from "./doctor.ts";
 * registerDoctor(new Command("volar"), io);
 * ```
 */
export function registerDoctor(program: Command, io: Io): void {
  program.command("doctor")
    .description("check that this host can run Volant microVMs (no daemon needed; changes nothing)")
    .option(
      "--config <file>",
      `volantd's config file (default $VOLANT_CONFIG, else ${DEFAULT_CONFIG_PATH})`,
    )
    .action(async (flags: DoctorFlags, cmd) => {
      const globals = globalFlags(cmd);
      const report = await runDoctor(flags, io, globals);
      if (globals.json) printJson(io, report);
      else io.out(formatDoctor(report, colorEnabled(io)));
      if (!report.ready) {
        const failed = report.checks.filter((c) => c.status === "fail");
        throw new VolantError(
          "invalid_state",
          `This host cannot boot a microVM yet: ${failed.map((c) => c.title).join(", ")} ` +
            `failed (the fixes are in the ${globals.json ? "report" : "checklist above"})`,
          { failed: failed.map((c) => c.id) },
        );
      }
    });
}
