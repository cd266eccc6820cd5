/**
 * A fake `cloud-hypervisor` for the driver tests on hosts without KVM: a Deno program that
 * answers Cloud Hypervisor's REST API on `--api-socket path=…`, checks every request against the
 * published API document (closed objects, see `openapi_contract.ts`), keeps the VM state machine
 * the API describes (no VM → `vm.create` → Created → `vm.boot` → Running ⇄ Paused;
 * `vm.shutdown` drops the VM; `vmm.shutdown` and a guest power-off end the process), and
 * simulates the test guest on its serial file (`VOLANT_TEST_DISK` lines, then `KESTREL_READY`;
 * powers off on the ACPI power button unless the command line says `volant_test_power=ignore`).
 * Error answers are Cloud Hypervisor's: a JSON array of strings, the error chain.
 *
 * It also exports what the tests use to install it as a "binary" ({@linkcode writeFakeCh}) and
 * the simulated guest shared with the fake Firecracker.
 *
 * @module
 */
import { READY_MARKER } from "../../schema/mod.ts";
import { BOOT_PROBE_CMDLINE_KEY, BOOT_PROBE_MARKER } from "../boot_probe.ts";
import type { VmSpec } from "../driver.ts";
import { OpenApiContract } from "./openapi_contract.ts";
import { TEST_DISK_MARKER, TEST_IGNORE_POWER } from "./protocol.ts";

/** How a fake VMM behaves; written as JSON beside its wrapper script. */
export interface FakeVmmConfig {
  /** The API document every request is checked against. */
  document: string;
  /** The release it claims (`--version`, ping): `53.0.0`, `1.16.1`, … */
  version: string;
  /** Appends one JSON line per request here: `{method, path, body, status, problems}`. */
  trace?: string;
  /** Print this to stderr and exit 1 at once (a VMM that cannot start). */
  exitAtOnce?: string;
  /** Stay up without ever creating the API socket. */
  noSocket?: boolean;
  /** Answer these requests (`"PUT /api/v1/vm.create"`) with an error: status and message. */
  fail?: Record<string, { status: number; message: string }>;
  /** Milliseconds from boot to the guest's first serial line; default 30. */
  guestDelayMs?: number;
  /**
   * The simulated guest hangs in early boot (prints the boot stub's `Probing EDD` line and
   * nothing more), as a stock kernel does under nested PVM: a KVM probe boot never passes.
   */
  hangGuest?: boolean;
}

/** One request as the fake saw it (a line of the trace file). */
export interface FakeTraceEntry {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  /** Where the request broke the API document (empty when it did not). */
  problems: string[];
  /** Where the fake's own answer broke the API document (empty when it did not). */
  answerProblems: string[];
}

/** A fake VMM installed as an executable script. */
export interface FakeBinary {
  /** The script to give the driver as its binary. */
  path: string;
  /** What `/proc/<pid>/exe` shows while it runs (the Deno binary). */
  processExe: string;
}

let installed = 0;

/**
 * Writes an executable script in `dir` that runs the fake `program` with `config`: the "binary"
 * a driver under test launches.
 *
 * @example
 * ```ts ignore
 * const fake = await writeFakeBinary(dir, "cloud-hypervisor", programUrl, config);
 * ```
 */
export async function writeFakeBinary(
  dir: string,
  name: string,
  program: URL,
  config: FakeVmmConfig,
): Promise<FakeBinary> {
  const n = ++installed;
  const configPath = `${dir}/${name}-${n}.json`;
  const path = `${dir}/${name}-${n}`;
  await Deno.writeTextFile(configPath, JSON.stringify(config));
  const quote = (s: string) => `'${s.replaceAll("'", `'"'"'`)}'`;
  const denoJson = new URL("../../deno.json", import.meta.url).pathname;
  await Deno.writeTextFile(
    path,
    "#!/bin/sh\n" +
      `exec ${quote(Deno.execPath())} run --quiet -A --config ${quote(denoJson)} ` +
      `${quote(program.pathname)} --fake-config ${quote(configPath)} "$@"\n`,
    { mode: 0o755 },
  );
  return { path, processExe: await Deno.realPath(Deno.execPath()) };
}

/**
 * Installs a fake `cloud-hypervisor` in `dir` (see the module doc).
 *
 * @example
 * ```ts ignore
 * import { writeFakeCh } from "./fake_ch_vmm.ts";
 * const fake = await writeFakeCh(dir, { document: docPath, version: "53.0.0" });
 * const driver = new CloudHypervisorDriver({ binary: fake.path, processExe: fake.processExe });
 * ```
 */
export function writeFakeCh(dir: string, config: FakeVmmConfig): Promise<FakeBinary> {
  return writeFakeBinary(dir, "cloud-hypervisor", new URL(import.meta.url), config);
}

/** Reads a fake's trace file (empty when there is none). */
export async function readTrace(path: string): Promise<FakeTraceEntry[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/**
 * The VM shapes the contract tests send through each driver's request builders: initramfs only,
 * a root disk, extra disks (qcow2 and read-only among them), several NICs, and no NIC at all.
 * Paths are under `dir` (not created).
 *
 * @example
 * ```ts ignore
 * for (const [shape, spec] of Object.entries(testVmShapes("/tmp/x"))) console.log(shape, spec.disks);
 * ```
 */
export function testVmShapes(dir: string): Record<string, VmSpec> {
  const base: VmSpec = {
    id: "shape",
    cpus: 1,
    memoryMib: 128,
    kernel: { path: `${dir}/vmlinux`, format: "vmlinux" },
    cmdline: "console=ttyS0 quiet",
    disks: [],
    nics: [],
    serialLog: `${dir}/log/serial.log`,
    vmmLog: `${dir}/log/vmm.log`,
    runtimeDir: `${dir}/run`,
  };
  const nic = (i: number) => ({
    id: `eth${i}`,
    tap: `vt${i}`,
    mac: `52:54:00:00:00:0${i + 1}`,
  });
  return {
    "initramfs only": { ...base, initramfs: `${dir}/initrd.cpio` },
    "root disk": {
      ...base,
      cmdline: "console=ttyS0 root=/dev/vda rw",
      disks: [{ id: "root", path: `${dir}/root.ext4`, readOnly: false, format: "raw" }],
      nics: [nic(0)],
    },
    "extra disks, qcow2 and read-only": {
      ...base,
      initramfs: `${dir}/initrd.cpio`,
      disks: [
        { id: "root", path: `${dir}/root.erofs`, readOnly: true, format: "raw" },
        { id: "data", path: `${dir}/data.qcow2`, readOnly: false, format: "qcow2" },
        {
          id: "a_seed_with_a_long_id_0123",
          path: `${dir}/seed.img`,
          readOnly: true,
          format: "raw",
        },
      ],
      nics: [nic(0)],
    },
    "several NICs": {
      ...base,
      cpus: 2,
      disks: [{ id: "root", path: `${dir}/root.ext4`, readOnly: false, format: "raw" }],
      nics: [nic(0), nic(1), { ...nic(2), mac: "52:54:00:AB:CD:EF" }],
    },
    "no NIC": { ...base, cpus: 4, memoryMib: 2048, initramfs: `${dir}/initrd.cpio` },
  };
}

/** The word's value in a kernel command line (`key=value`), if present. */
function cmdlineValue(cmdline: string, key: string): string | undefined {
  const word = cmdline.split(/\s+/).find((w) => w.startsWith(`${key}=`));
  return word?.slice(key.length + 1);
}

/**
 * What the simulated test guest prints once booted: one `VOLANT_TEST_DISK` line per disk, in
 * device order (`vda`, `vdb`, …, with the disk's first line), then the ready line naming
 * `volant_test_name` from the command line. A probe boot (`volant.probe=<nonce>` on the command
 * line) prints the probe marker with the nonce instead; a hanging guest only `Probing EDD`.
 *
 * @example
 * ```ts ignore
 * const lines = await fakeGuestLines("console=ttyS0 volant_test_name=web", ["/d/a.img"]);
 * ```
 */
export async function fakeGuestLines(
  cmdline: string,
  disks: readonly string[],
  config: Pick<FakeVmmConfig, "hangGuest"> = {},
): Promise<string> {
  if (config.hangGuest) return "Probing EDD (edd=off to disable)... ok\n";
  const nonce = cmdlineValue(cmdline, BOOT_PROBE_CMDLINE_KEY);
  if (nonce !== undefined) return `${BOOT_PROBE_MARKER} ${nonce}\n`;
  let out = "";
  for (const [i, disk] of disks.entries()) {
    const bytes = await Deno.readFile(disk).catch(() => new Uint8Array());
    const first = new TextDecoder().decode(bytes.subarray(0, 256)).split("\n")[0] ?? "";
    out += `${TEST_DISK_MARKER} vd${String.fromCharCode(97 + i)} ${first}\n`;
  }
  const report = {
    name: cmdlineValue(cmdline, "volant_test_name") ?? "test-guest",
    kestrel_version: "fake-vmm",
    uptime_ms: 42,
    mem_total_kb: 200_000,
    mem_available_kb: 150_000,
  };
  return `${out}${READY_MARKER} ${JSON.stringify(report)}\n`;
}

/** True when the simulated guest ignores the power button / Ctrl-Alt-Del. */
export function guestIgnoresPower(cmdline: string): boolean {
  return cmdline.split(/\s+/).includes(TEST_IGNORE_POWER);
}

/** The value after `flag` in `args`. */
export function argValue(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}

/** Appends a trace line (synchronously, so it is there before the answer). */
export function traceRequest(config: FakeVmmConfig, entry: FakeTraceEntry): void {
  if (config.trace) {
    Deno.writeTextFileSync(config.trace, `${JSON.stringify(entry)}\n`, { append: true });
  }
}

/** Reads the config, handles `--version`, `exitAtOnce` and `noSocket`; null when done. */
export async function startFake(
  args: readonly string[],
  versionLine: (version: string) => string,
): Promise<FakeVmmConfig | null> {
  const configPath = argValue(args, "--fake-config");
  if (!configPath) throw new Error("fake VMM: --fake-config is required");
  const config = JSON.parse(await Deno.readTextFile(configPath)) as FakeVmmConfig;
  if (args.includes("--version")) {
    console.log(versionLine(config.version));
    return null;
  }
  if (config.exitAtOnce) {
    console.error(config.exitAtOnce);
    Deno.exit(1);
  }
  if (config.noSocket) {
    setInterval(() => {}, 60_000);
    return null;
  }
  return config;
}

// ---------------------------------------------------------------------------------------------
// The Cloud Hypervisor program.

interface ChConfigBody {
  payload: { kernel?: string; initramfs?: string; cmdline?: string };
  memory?: { size: number };
  disks?: Array<{ id?: string; path?: string; image_type?: string }>;
  net?: Array<{ id?: string }>;
  serial?: { mode: string; file?: string };
}

type ChState = "Running" | "Paused";

function chError(status: number, ...chain: string[]): Response {
  return Response.json(["Error from API", ...chain], { status });
}

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

async function bootProblem(config: ChConfigBody): Promise<string | null> {
  const files = [config.payload.kernel, config.payload.initramfs].filter((f) => f !== undefined);
  for (const file of files) {
    if (!(await Deno.stat(file).then((s) => s.isFile, () => false))) {
      return `Error loading kernel or initramfs: ${file}: No such file or directory (os error 2)`;
    }
  }
  for (const disk of config.disks ?? []) {
    let head: Uint8Array;
    try {
      const bytes = await Deno.readFile(disk.path ?? "");
      head = bytes.subarray(0, 4);
    } catch (err) {
      return `Cannot create virtio-blk device ${disk.id}: Failed to open disk image ${disk.path}: ` +
        (err as Error).message;
    }
    if (disk.image_type === "Qcow2" && !QCOW2_MAGIC.every((b, i) => head[i] === b)) {
      return `Cannot create virtio-blk device ${disk.id}: Failed to parse QCOW2 image ` +
        `${disk.path}: invalid magic`;
    }
  }
  return null;
}

class FakeCh {
  #config: FakeVmmConfig;
  #contract: OpenApiContract;
  #vmConfig: ChConfigBody | null = null;
  #state: ChState | null = null;
  #powerPending = false;

  constructor(config: FakeVmmConfig, contract: OpenApiContract) {
    this.#config = config;
    this.#contract = contract;
  }

  async handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const text = await req.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch (err) {
      return chError(400, `Invalid JSON: ${(err as Error).message}`);
    }
    const entry: FakeTraceEntry = {
      method: req.method,
      path,
      ...(body === undefined ? {} : { body }),
      status: 0,
      problems: this.#contract.route(req.method, path)
        ? this.#contract.requestProblems(req.method, path, body)
        : [],
      answerProblems: [],
    };
    const response = await this.#answer(req.method, path, body, entry.problems);
    entry.status = response.status;
    const answerText = await response.clone().text();
    if (response.status >= 200 && response.status < 300 && this.#contract.route(req.method, path)) {
      entry.answerProblems = this.#contract.responseProblems(
        req.method,
        path,
        response.status,
        answerText === "" ? undefined : JSON.parse(answerText),
      );
    }
    traceRequest(this.#config, entry);
    return response;
  }

  async #answer(
    method: string,
    path: string,
    body: unknown,
    problems: string[],
  ): Promise<Response> {
    if (!this.#contract.route(method, path)) return chError(404, `Unknown endpoint ${path}`);
    if (problems.length > 0) return chError(400, "Invalid request", ...problems);
    const injected = this.#config.fail?.[`${method} ${path}`];
    if (injected) return chError(injected.status, injected.message);
    const noVm = (what: string) => chError(404, `The VM could not ${what}`, "VM is not created");
    switch (path.replace(/^\/api\/v1/, "")) {
      case "/vmm.ping":
        return Response.json({
          version: this.#config.version,
          build_version: `v${this.#config.version}`,
          pid: Deno.pid,
          features: [],
        });
      case "/vm.create": {
        if (this.#vmConfig) {
          return chError(500, "The VM could not be created", "VM already created");
        }
        const config = body as ChConfigBody;
        if (config.serial?.mode === "File") {
          try {
            // Cloud Hypervisor opens its File serial with File::create: truncated.
            await Deno.writeTextFile(config.serial.file ?? "", "");
          } catch (err) {
            return chError(500, "The VM could not be created", (err as Error).message);
          }
        }
        this.#vmConfig = config;
        return new Response(null, { status: 204 });
      }
      case "/vm.boot": {
        if (!this.#vmConfig) return noVm("boot");
        if (this.#state) {
          return chError(500, "The VM could not boot", "Invalid VM state transition");
        }
        const problem = await bootProblem(this.#vmConfig);
        if (problem) return chError(500, "The VM could not boot", problem);
        this.#state = "Running";
        this.#runGuest();
        return new Response(null, { status: 204 });
      }
      case "/vm.info":
        if (!this.#vmConfig) return chError(404, "VM is not created");
        return Response.json({
          config: this.#vmConfig,
          state: this.#state ?? "Created",
          memory_actual_size: this.#vmConfig.memory?.size ?? 512 << 20,
        });
      case "/vm.pause":
        if (!this.#vmConfig) return noVm("pause");
        if (this.#state !== "Running") {
          return chError(
            500,
            "The VM could not pause",
            `Invalid VM state transition: ${this.#describe()} to Paused`,
          );
        }
        this.#state = "Paused";
        return new Response(null, { status: 204 });
      case "/vm.resume":
        if (!this.#vmConfig) return noVm("resume");
        if (this.#state !== "Paused") {
          return chError(
            500,
            "The VM could not resume",
            `Invalid VM state transition: ${this.#describe()} to Running`,
          );
        }
        this.#state = "Running";
        if (this.#powerPending) this.#powerOff();
        return new Response(null, { status: 204 });
      case "/vm.counters": {
        if (!this.#state) return chError(500, "Error getting counters", "VM is not running");
        const counters: Record<string, Record<string, number>> = {};
        for (const d of this.#vmConfig?.disks ?? []) {
          counters[d.id ?? "_disk"] = {
            read_bytes: 512,
            write_bytes: 0,
            read_ops: 1,
            write_ops: 0,
          };
        }
        for (const n of this.#vmConfig?.net ?? []) {
          counters[n.id ?? "_net"] = { rx_bytes: 0, tx_bytes: 0, rx_frames: 0, tx_frames: 0 };
        }
        return Response.json(counters);
      }
      case "/vm.power-button":
        if (!this.#vmConfig) return noVm("power button");
        if (!this.#state) {
          return chError(500, "The power button could not be triggered", "VM is not booted");
        }
        if (this.#state === "Running") this.#powerOff();
        else this.#powerPending = true;
        return new Response(null, { status: 204 });
      case "/vm.shutdown":
        if (!this.#vmConfig) return noVm("shut down");
        if (!this.#state) return chError(500, "The VM could not shut down", "VM is not booted");
        this.#state = null;
        return new Response(null, { status: 204 });
      case "/vmm.shutdown":
        setTimeout(() => Deno.exit(0), 20);
        return new Response(null, { status: 204 });
      default:
        return chError(404, `Endpoint ${path} is not simulated by the fake`);
    }
  }

  #describe(): string {
    return this.#state ?? "Created";
  }

  #powerOff(): void {
    if (guestIgnoresPower(this.#vmConfig?.payload.cmdline ?? "")) return;
    // The guest powers off; without --no-shutdown Cloud Hypervisor exits with it.
    setTimeout(() => Deno.exit(0), 20);
  }

  #runGuest(): void {
    const config = this.#vmConfig!;
    const tick = async () => {
      if (this.#state === "Paused") return void setTimeout(tick, 20);
      if (this.#state !== "Running") return;
      const lines = await fakeGuestLines(
        config.payload.cmdline ?? "",
        (config.disks ?? []).map((d) => d.path ?? ""),
        this.#config,
      );
      if (config.serial?.mode === "File" && config.serial.file) {
        await Deno.writeTextFile(config.serial.file, lines, { append: true });
      }
    };
    setTimeout(tick, this.#config.guestDelayMs ?? 30);
  }
}

async function main(args: string[]): Promise<void> {
  const config = await startFake(args, (v) => `cloud-hypervisor v${v}`);
  if (!config) return;
  const socketArg = argValue(args, "--api-socket") ?? "";
  const socket = socketArg.startsWith("path=") ? socketArg.slice(5) : socketArg;
  if (!socket) {
    console.error("Error: --api-socket path=<socket> is required by this fake");
    Deno.exit(1);
  }
  const contract = await OpenApiContract.load(config.document);
  // Cloud Hypervisor removes a stale socket itself and holds a lock beside it.
  await Deno.remove(socket).catch(() => {});
  await Deno.writeTextFile(`${socket}.lock`, "");
  const fake = new FakeCh(config, contract);
  Deno.serve({ path: socket, onListen() {} }, (req) => fake.handle(req));
}

if (import.meta.main) await main(Deno.args);
