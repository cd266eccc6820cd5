/**
 * A fake `cloud-hypervisor` or `firecracker` that also saves and restores its guest, for the REST
 * drivers' snapshot tests on hosts without KVM (the fakes in `../testing/` model everything
 * else): a Deno program answering the VMM's REST API on its socket, checking every request
 * against the published API document (closed objects, see `../testing/openapi_contract.ts`) and
 * tracing it like those fakes.
 *
 * The simulated guest has state worth saving: once booted it prints the test guest's lines
 * (`VOLANT_TEST_DISK` lines, then the ready line) and, with `volant_test_ticks=1` on its command
 * line, counts on its serial console (`VOLANT_TEST_TICK <n> <memory id>`, every 50 ms, while it
 * runs). A save writes the VMM's files with the count and a random memory id in them:
 *
 * - Cloud Hypervisor (`PUT /api/v1/vm.snapshot`, paused VM, `file://` directory that exists):
 *   `config.json` (the VM's configuration), `state.json`, `memory-ranges` (a sparse file as
 *   large as the guest's memory, its first line naming the memory id and count);
 * - Firecracker (`PUT /snapshot/create`, paused, `Full` only): the state file at
 *   `snapshot_path` (JSON: configuration, count, memory id) and the memory file at
 *   `mem_file_path` (as above).
 *
 * A restore checks them the way the VMM would fail on them: Cloud Hypervisor's `vm.restore`
 * only without a VM, reading `config.json`, `state.json` and `memory-ranges` from `source_url`
 * (memory size and id must match the state; disks must open; the `File` serial is truncated and
 * the guest's lines go to it); Firecracker's `/snapshot/load` only before any configuration, with
 * a `File` memory backend (or the deprecated `mem_file_path`), interfaces of
 * `network_overrides` known, drives opening — and a failed load ends the process, as
 * Firecracker's does. The restored guest is paused (unless `resume`/`resume_vm`), does not boot
 * again, and carries on counting from the saved count with the saved memory id.
 *
 * Failures injected with `fail` on a save write part of the state first (a VMM that fails
 * half-way), then answer the error.
 *
 * @module
 */
import {
  argValue,
  type FakeBinary,
  fakeGuestLines,
  type FakeTraceEntry,
  type FakeVmmConfig,
  guestIgnoresPower,
  startFake,
  traceRequest,
} from "../testing/fake_ch_vmm.ts";
import { OpenApiContract } from "../testing/openapi_contract.ts";

/** Which VMM the fake plays. */
export type SnapshotFakeKind = "cloud-hypervisor" | "firecracker";

/** How the fake behaves (the shared fake config, and which VMM it is). */
export interface SnapshotFakeConfig extends FakeVmmConfig {
  kind: SnapshotFakeKind;
}

let installed = 0;

/**
 * Installs the fake as an executable `cloud-hypervisor` or `firecracker` in `dir` (see the
 * module doc): a shell script running this program with `config`. `env` is set by the script
 * itself (a jailed VMM starts with an empty environment: Deno needs `DENO_DIR` there).
 *
 * @example
 * ```ts ignore
 * import { writeSnapshotFake } from "./snapshot_vmm.ts";
 * const fake = await writeSnapshotFake(dir, "firecracker", { document, version: "1.16.1" });
 * const driver = new FirecrackerDriver({ binary: fake.path, processExe: fake.processExe });
 * ```
 */
export async function writeSnapshotFake(
  dir: string,
  kind: SnapshotFakeKind,
  config: FakeVmmConfig,
  options: { env?: Record<string, string> } = {},
): Promise<FakeBinary> {
  const full: SnapshotFakeConfig = { ...config, kind };
  const n = ++installed;
  const configPath = `${dir}/${kind}-snapshot-${n}.json`;
  const path = `${dir}/${kind}-snapshot-${n}`;
  await Deno.writeTextFile(configPath, JSON.stringify(full));
  const quote = (s: string) => `'${s.replaceAll("'", `'"'"'`)}'`;
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${quote(v)} `).join("");
  const denoJson = new URL("../../deno.json", import.meta.url).pathname;
  await Deno.writeTextFile(
    path,
    "#!/bin/sh\n" +
      `${env}exec ${quote(Deno.execPath())} run --quiet -A --config ${quote(denoJson)} ` +
      `${quote(new URL(import.meta.url).pathname)} --fake-config ${quote(configPath)} "$@"\n`,
    { mode: 0o755 },
  );
  return { path, processExe: await Deno.realPath(Deno.execPath()) };
}

/** The first line of a fake memory file. */
const MEMORY_MAGIC = "VOLANT-FAKE-GUEST-MEMORY";

/** The tick line of the simulated guest. */
export const TICK_MARKER = "VOLANT_TEST_TICK";

/** What a fake save keeps of the guest. */
interface GuestState {
  tick: number;
  memoryId: string;
  booted: boolean;
}

/** Writes a fake memory file: sparse, `bytes` long, its first line identifying the guest. */
async function writeMemory(path: string, bytes: number, guest: GuestState): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  await file.write(new TextEncoder().encode(`${MEMORY_MAGIC} ${guest.memoryId} ${guest.tick}\n`));
  await file.truncate(bytes);
}

/** Checks a fake memory file against the saved guest; the problem, or null. */
async function memoryProblem(
  path: string,
  bytes: number,
  guest: GuestState,
): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    return `cannot open the memory file ${path}: ${(err as Error).message}`;
  }
  if (info.size !== bytes) {
    return `the memory file ${path} holds ${info.size} bytes, the guest has ${bytes}`;
  }
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(128);
  const n = await file.read(head) ?? 0;
  const line = new TextDecoder().decode(head.subarray(0, n)).split("\n")[0];
  if (line !== `${MEMORY_MAGIC} ${guest.memoryId} ${guest.tick}`) {
    return `the memory file ${path} is not the saved guest's memory`;
  }
  return null;
}

async function opens(path: string | undefined): Promise<string | null> {
  if (path === undefined) return "no path";
  try {
    (await Deno.open(path, { read: true })).close();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function randomId(): string {
  return [...crypto.getRandomValues(new Uint8Array(8))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The simulated guest: boot lines, then (with `volant_test_ticks=1`) a count while it runs. */
class Guest {
  tick = 0;
  memoryId = randomId();
  booted = false;
  running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly cmdline: () => string,
    readonly disks: () => string[],
    readonly out: (text: string) => Promise<void>,
    readonly config: FakeVmmConfig,
  ) {}

  /** The state a save keeps. */
  saved(): GuestState {
    return { tick: this.tick, memoryId: this.memoryId, booted: this.booted };
  }

  /** Takes a saved guest over (paused). */
  restore(state: GuestState): void {
    this.tick = state.tick;
    this.memoryId = state.memoryId;
    this.booted = state.booted;
  }

  run(): void {
    this.running = true;
    if (this.#timer !== undefined) return;
    // The count moves before its line is written: a save between the two keeps the line's
    // successor, so a restored guest never repeats a line.
    const step = async () => {
      this.#timer = undefined;
      if (!this.running) return;
      let text = "";
      if (!this.booted) {
        this.booted = true;
        text = await fakeGuestLines(this.cmdline(), this.disks(), this.config);
      } else if (this.cmdline().split(/\s+/).includes("volant_test_ticks=1")) {
        text = `${TICK_MARKER} ${this.tick} ${this.memoryId}\n`;
        this.tick++;
      }
      if (text !== "") await this.out(text);
      if (this.running && this.#timer === undefined) this.#timer = setTimeout(step, 50);
    };
    this.#timer = setTimeout(step, this.booted ? 50 : this.config.guestDelayMs ?? 30);
  }

  pause(): void {
    this.running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

type Answer = Response | Promise<Response>;

/** What both flavours share: request checking and tracing. */
abstract class FakeVmm {
  readonly config: SnapshotFakeConfig;
  readonly contract: OpenApiContract;

  constructor(config: SnapshotFakeConfig, contract: OpenApiContract) {
    this.config = config;
    this.contract = contract;
  }

  abstract error(status: number, message: string): Response;
  abstract answer(method: string, path: string, body: unknown): Answer;

  async handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const text = await req.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch (err) {
      return this.error(400, `Invalid JSON: ${(err as Error).message}`);
    }
    const route = this.contract.route(req.method, path);
    const entry: FakeTraceEntry = {
      method: req.method,
      path,
      ...(body === undefined ? {} : { body }),
      status: 0,
      problems: route ? this.contract.requestProblems(req.method, path, body) : [],
      answerProblems: [],
    };
    const response = !route
      ? this.error(404, `Unknown endpoint ${req.method} ${path}`)
      : entry.problems.length > 0
      ? this.error(400, entry.problems.join("; "))
      : await this.answer(req.method, path, body);
    entry.status = response.status;
    if (route && response.status >= 200 && response.status < 300) {
      const answer = await response.clone().text();
      entry.answerProblems = this.contract.responseProblems(
        req.method,
        path,
        response.status,
        answer === "" ? undefined : JSON.parse(answer),
      );
    }
    traceRequest(this.config, entry);
    return response;
  }

  /** The injected failure for `method path`, if any. */
  injected(method: string, path: string): { status: number; message: string } | undefined {
    return this.config.fail?.[`${method} ${path}`];
  }
}

const NO_CONTENT = () => new Response(null, { status: 204 });

// ---------------------------------------------------------------------------------------------
// Cloud Hypervisor.

interface ChConfig {
  payload: { kernel?: string; initramfs?: string; cmdline?: string };
  memory?: { size: number };
  disks?: Array<{ id?: string; path?: string }>;
  net?: Array<{ id?: string }>;
  serial?: { mode: string; file?: string };
}

interface ChSavedState extends GuestState {
  vmm: "fake-cloud-hypervisor";
  memory_bytes: number;
}

class FakeCh extends FakeVmm {
  #vm: ChConfig | null = null;
  #state: "Created" | "Running" | "Paused" = "Created";
  #guest = new Guest(
    () => this.#vm?.payload.cmdline ?? "",
    () => (this.#vm?.disks ?? []).map((d) => d.path ?? ""),
    (text) => this.#serial(text),
    this.config,
  );

  override error(status: number, ...chain: string[]): Response {
    return Response.json(["Error from API", ...chain], { status });
  }

  async #serial(text: string): Promise<void> {
    const serial = this.#vm?.serial;
    if (serial?.mode === "File" && serial.file) {
      await Deno.writeTextFile(serial.file, text, { append: true });
    }
  }

  override async answer(method: string, path: string, body: unknown): Promise<Response> {
    const injected = this.injected(method, path);
    const action = path.replace(/^\/api\/v1/, "");
    if (injected && action !== "/vm.snapshot") {
      return this.error(injected.status, injected.message);
    }
    const b = (body ?? {}) as Record<string, unknown>;
    switch (action) {
      case "/vmm.ping":
        return Response.json({ version: this.config.version, pid: Deno.pid, features: [] });
      case "/vm.create":
        if (this.#vm) return this.error(500, "The VM could not be created", "VM already created");
        this.#vm = body as ChConfig;
        if (this.#vm.serial?.mode === "File") await Deno.writeTextFile(this.#vm.serial.file!, "");
        return NO_CONTENT();
      case "/vm.info":
        if (!this.#vm) return this.error(404, "VM is not created");
        return Response.json({ config: this.#vm, state: this.#state });
      case "/vm.boot":
        if (!this.#vm) return this.error(404, "The VM could not boot", "VM is not created");
        if (this.#state !== "Created") {
          return this.error(500, "The VM could not boot", "Invalid VM state transition");
        }
        this.#state = "Running";
        this.#guest.run();
        return NO_CONTENT();
      case "/vm.pause":
      case "/vm.resume": {
        const pausing = action === "/vm.pause";
        if (!this.#vm) return this.error(404, "VM is not created");
        if (this.#state !== (pausing ? "Running" : "Paused")) {
          return this.error(
            500,
            `The VM could not ${pausing ? "pause" : "resume"}`,
            `Invalid VM state transition: ${this.#state} to ${pausing ? "Paused" : "Running"}`,
          );
        }
        this.#state = pausing ? "Paused" : "Running";
        if (pausing) this.#guest.pause();
        else this.#guest.run();
        return NO_CONTENT();
      }
      case "/vm.power-button":
        if (this.#state === "Running" && !guestIgnoresPower(this.#vm?.payload.cmdline ?? "")) {
          setTimeout(() => Deno.exit(0), 20);
        }
        return NO_CONTENT();
      case "/vm.shutdown":
        this.#guest.pause();
        this.#vm = null;
        this.#state = "Created";
        return NO_CONTENT();
      case "/vmm.shutdown":
        setTimeout(() => Deno.exit(0), 20);
        return NO_CONTENT();
      case "/vm.snapshot":
        return await this.#snapshot(String(b.destination_url ?? ""), injected);
      case "/vm.restore":
        return await this.#restore(String(b.source_url ?? ""), b.resume === true);
      default:
        return this.error(404, `Endpoint ${path} is not simulated by the fake`);
    }
  }

  async #snapshot(
    url: string,
    injected: { status: number; message: string } | undefined,
  ): Promise<Response> {
    const fail = (...chain: string[]) =>
      this.error(500, "The VM could not be snapshotted", ...chain);
    if (!this.#vm) return this.error(404, "VM is not created");
    if (this.#state !== "Paused") return fail("Trying to snapshot while VM is running");
    if (!url.startsWith("file://")) return fail(`Invalid URL ${url}`);
    const dir = url.slice("file://".length);
    if (!(await Deno.stat(dir).then((s) => s.isDirectory, () => false))) {
      return fail(`Failed to create snapshot: ${dir}: No such file or directory (os error 2)`);
    }
    try {
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(this.#vm));
      if (injected) return this.error(injected.status, injected.message);
      const bytes = this.#vm.memory?.size ?? 512 << 20;
      const state: ChSavedState = {
        vmm: "fake-cloud-hypervisor",
        memory_bytes: bytes,
        ...this.#guest.saved(),
      };
      await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
      await writeMemory(`${dir}/memory-ranges`, bytes, this.#guest.saved());
    } catch (err) {
      return fail((err as Error).message);
    }
    return NO_CONTENT();
  }

  async #restore(url: string, resume: boolean): Promise<Response> {
    const fail = (...chain: string[]) => this.error(500, "The VM could not be restored", ...chain);
    if (this.#vm) return fail("VM already created");
    if (!url.startsWith("file://")) return fail(`Invalid URL ${url}`);
    const dir = url.slice("file://".length);
    let config: ChConfig;
    let state: ChSavedState;
    try {
      config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
    } catch (err) {
      return fail(`Error receiving the VM state: ${(err as Error).message}`);
    }
    if (state?.vmm !== "fake-cloud-hypervisor") return fail("Invalid snapshot state");
    if (state.memory_bytes !== (config.memory?.size ?? 512 << 20)) {
      return fail("Invalid snapshot: the memory size differs from the configuration's");
    }
    const memory = await memoryProblem(`${dir}/memory-ranges`, state.memory_bytes, state);
    if (memory) return fail(`Failed to restore the memory: ${memory}`);
    for (const disk of config.disks ?? []) {
      const problem = await opens(disk.path);
      if (problem) return fail(`Cannot open disk ${disk.id} (${disk.path}): ${problem}`);
    }
    if (config.serial?.mode === "File") {
      try {
        await Deno.writeTextFile(config.serial.file ?? "", "");
      } catch (err) {
        return fail(`Error creating the serial device: ${(err as Error).message}`);
      }
    }
    this.#vm = config;
    this.#guest.restore(state);
    this.#state = resume ? "Running" : "Paused";
    if (resume) this.#guest.run();
    return NO_CONTENT();
  }
}

// ---------------------------------------------------------------------------------------------
// Firecracker.

interface FcSaved extends GuestState {
  vmm: "fake-firecracker";
  memory_bytes: number;
  machine: { vcpu_count: number; mem_size_mib: number };
  boot: { kernel_image_path: string; boot_args?: string; initrd_path?: string } | null;
  drives: Array<{ drive_id: string; path_on_host?: string }>;
  ifaces: Array<{ iface_id: string; host_dev_name: string; guest_mac?: string }>;
}

class FakeFc extends FakeVmm {
  #state: "Not started" | "Running" | "Paused" = "Not started";
  #configured = false;
  #machine = { vcpu_count: 1, mem_size_mib: 128 };
  #boot: FcSaved["boot"] = null;
  #drives = new Map<string, FcSaved["drives"][number]>();
  #ifaces = new Map<string, FcSaved["ifaces"][number]>();
  #guest = new Guest(
    () => this.#boot?.boot_args ?? "",
    () => [...this.#drives.values()].map((d) => d.path_on_host ?? ""),
    async (text) => void await Deno.stdout.write(new TextEncoder().encode(text)),
    this.config,
  );

  override error(status: number, message: string): Response {
    return Response.json({ fault_message: message }, { status });
  }

  #preBoot(): Response | null {
    return this.#state === "Not started"
      ? null
      : this.error(400, "The requested operation is not supported after starting the microVM.");
  }

  override async answer(method: string, path: string, body: unknown): Promise<Response> {
    const injected = this.injected(method, path);
    const template = this.contract.route(method, path)!.template;
    if (injected && template !== "/snapshot/create") {
      if (template === "/snapshot/load") setTimeout(() => Deno.exit(1), 20);
      return this.error(injected.status, injected.message);
    }
    const b = (body ?? {}) as Record<string, unknown>;
    switch (`${method} ${template}`) {
      case "GET /":
        return Response.json({
          app_name: "Firecracker",
          id: "anonymous-instance",
          state: this.#state,
          vmm_version: this.config.version,
        });
      case "PUT /machine-config":
      case "PUT /boot-source":
      case "PUT /drives/{drive_id}":
      case "PUT /network-interfaces/{iface_id}":
        return await this.#configure(template, b);
      case "PUT /actions":
        return this.#action(String(b.action_type));
      case "PATCH /vm":
        if (this.#state === "Not started") {
          return this.error(
            400,
            "The requested operation is not supported before starting the microVM.",
          );
        }
        this.#state = b.state === "Paused" ? "Paused" : "Running";
        if (this.#state === "Paused") this.#guest.pause();
        else this.#guest.run();
        return NO_CONTENT();
      case "PUT /snapshot/create":
        return await this.#create(b, injected);
      case "PUT /snapshot/load": {
        const response = await this.#load(b);
        // Firecracker exits when a load fails.
        if (response.status >= 300) setTimeout(() => Deno.exit(1), 20);
        return response;
      }
      default:
        return this.error(400, `${method} ${path} is not simulated by the fake`);
    }
  }

  async #configure(template: string, b: Record<string, unknown>): Promise<Response> {
    const refused = this.#preBoot();
    if (refused) return refused;
    this.#configured = true;
    switch (template) {
      case "/machine-config":
        this.#machine = b as FcSaved["machine"];
        return NO_CONTENT();
      case "/boot-source": {
        const boot = b as NonNullable<FcSaved["boot"]>;
        for (const file of [boot.kernel_image_path, boot.initrd_path]) {
          if (file === undefined) continue;
          const problem = await opens(file);
          if (problem) return this.error(400, `The kernel or initrd cannot be opened: ${problem}`);
        }
        this.#boot = boot;
        return NO_CONTENT();
      }
      case "/drives/{drive_id}": {
        const problem = await opens(b.path_on_host as string | undefined);
        if (problem) return this.error(400, `Unable to create the block device: ${problem}`);
        this.#drives.set(String(b.drive_id), b as FcSaved["drives"][number]);
        return NO_CONTENT();
      }
      default:
        this.#ifaces.set(String(b.iface_id), b as FcSaved["ifaces"][number]);
        return NO_CONTENT();
    }
  }

  #action(type: string): Response {
    if (type === "InstanceStart") {
      const refused = this.#preBoot();
      if (refused) return refused;
      if (!this.#boot) return this.error(400, "Cannot start microvm without kernel configuration.");
      this.#state = "Running";
      this.#guest.run();
      return NO_CONTENT();
    }
    if (this.#state === "Running" && !guestIgnoresPower(this.#boot?.boot_args ?? "")) {
      setTimeout(() => Deno.exit(0), 20);
    }
    return NO_CONTENT();
  }

  async #create(
    b: Record<string, unknown>,
    injected: { status: number; message: string } | undefined,
  ): Promise<Response> {
    if (this.#state !== "Paused") {
      return this.error(400, "Cannot create a snapshot: the microVM is not paused.");
    }
    if (b.snapshot_type === "Diff") {
      return this.error(400, "Diff snapshots are not enabled: dirty page tracking is off.");
    }
    const statePath = String(b.snapshot_path);
    const memPath = String(b.mem_file_path);
    const bytes = this.#machine.mem_size_mib * 1024 * 1024;
    const saved: FcSaved = {
      vmm: "fake-firecracker",
      memory_bytes: bytes,
      machine: this.#machine,
      boot: this.#boot,
      drives: [...this.#drives.values()],
      ifaces: [...this.#ifaces.values()],
      ...this.#guest.saved(),
    };
    try {
      await Deno.writeTextFile(statePath, JSON.stringify(saved));
      if (injected) return this.error(injected.status, injected.message);
      await writeMemory(memPath, bytes, saved);
    } catch (err) {
      return this.error(400, `Cannot save the microVM state: ${(err as Error).message}`);
    }
    return NO_CONTENT();
  }

  async #load(b: Record<string, unknown>): Promise<Response> {
    if (this.#configured || this.#state !== "Not started") {
      return this.error(
        400,
        "Loading a microVM snapshot not allowed after configuring boot-specific resources.",
      );
    }
    const backend = b.mem_backend as { backend_type: string; backend_path: string } | undefined;
    if (backend !== undefined && b.mem_file_path !== undefined) {
      return this.error(400, "Only one of mem_file_path and mem_backend may be given.");
    }
    if (backend?.backend_type === "Uffd") {
      return this.error(400, "The Uffd memory backend is not simulated by the fake.");
    }
    const memPath = backend?.backend_path ?? (b.mem_file_path as string | undefined);
    if (memPath === undefined) {
      return this.error(400, "Missing the memory backend: give mem_backend.");
    }
    let saved: FcSaved;
    try {
      saved = JSON.parse(await Deno.readTextFile(String(b.snapshot_path)));
    } catch (err) {
      return this.error(
        400,
        `Load snapshot error: cannot read the state: ${(err as Error).message}`,
      );
    }
    if (saved?.vmm !== "fake-firecracker") {
      return this.error(400, "Load snapshot error: the state file is not a microVM state");
    }
    const memory = await memoryProblem(memPath, saved.memory_bytes, saved);
    if (memory) return this.error(400, `Load snapshot error: ${memory}`);
    const ifaces = new Map(saved.ifaces.map((i) => [i.iface_id, i]));
    for (const o of (b.network_overrides ?? []) as Array<Record<string, string>>) {
      const iface = ifaces.get(o.iface_id!);
      if (!iface) {
        return this.error(
          400,
          `Load snapshot error: no network interface ${o.iface_id} to override`,
        );
      }
      ifaces.set(iface.iface_id, { ...iface, host_dev_name: o.host_dev_name! });
    }
    for (const drive of saved.drives) {
      const problem = await opens(drive.path_on_host);
      if (problem) {
        return this.error(400, `Load snapshot error: block device ${drive.drive_id}: ${problem}`);
      }
    }
    this.#machine = saved.machine;
    this.#boot = saved.boot;
    this.#drives = new Map(saved.drives.map((d) => [d.drive_id, d]));
    this.#ifaces = ifaces;
    this.#guest.restore(saved);
    this.#state = b.resume_vm === true ? "Running" : "Paused";
    if (b.resume_vm === true) this.#guest.run();
    return NO_CONTENT();
  }
}

async function main(args: string[]): Promise<void> {
  const base = await startFake(args, (v) => `${v}`);
  if (!base) return;
  const config = base as SnapshotFakeConfig;
  const contract = await OpenApiContract.load(config.document);
  let socket: string;
  let fake: FakeVmm;
  if (config.kind === "cloud-hypervisor") {
    const arg = argValue(args, "--api-socket") ?? "";
    socket = arg.startsWith("path=") ? arg.slice(5) : arg;
    // Cloud Hypervisor removes a stale socket itself and holds a lock beside it.
    await Deno.remove(socket).catch(() => {});
    await Deno.writeTextFile(`${socket}.lock`, "");
    fake = new FakeCh(config, contract);
  } else {
    socket = argValue(args, "--api-sock") ?? "/run/firecracker.socket";
    if (await Deno.lstat(socket).then(() => true, () => false)) {
      console.error(
        `Error: RunWithApi(FailedToBindSocket): Failed to open the API socket at: ${socket}.`,
      );
      Deno.exit(1);
    }
    fake = new FakeFc(config, contract);
  }
  Deno.serve({ path: socket, onListen() {} }, (req) => fake.handle(req));
}

if (import.meta.main) await main(Deno.args);
