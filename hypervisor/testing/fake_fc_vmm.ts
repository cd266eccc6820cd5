/**
 * A fake `firecracker` for the driver tests on hosts without KVM: a Deno program that answers
 * Firecracker's REST API on `--api-sock`, checks every request against the published API
 * document (closed objects, see `openapi_contract.ts`), and keeps the state machine the
 * documentation describes:
 *
 * - it refuses to start when the socket path exists (Firecracker will not bind over it);
 * - `boot-source`, `machine-config`, `drives/{id}` and `network-interfaces/{id}` are pre-boot
 *   only, their path id must equal the body's, drives and kernel must open;
 * - `InstanceStart` needs a boot source and works once; `SendCtrlAltDel` and `PATCH /vm` only
 *   after it;
 * - `GET /` reports `Not started`, `Running` or `Paused`.
 *
 * The guest's serial console is the fake's stdout, as with Firecracker: it prints the test
 * guest's lines there, and on `SendCtrlAltDel` the guest reboots and the VMM exits (unless the
 * command line says `volant_test_power=ignore`). Error answers are `{"fault_message": …}`.
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
  writeFakeBinary,
} from "./fake_ch_vmm.ts";
import { OpenApiContract } from "./openapi_contract.ts";

/**
 * Installs a fake `firecracker` in `dir` (see the module doc).
 *
 * @example
 * ```ts ignore
 * import { writeFakeFc } from "./fake_fc_vmm.ts";
 * const fake = await writeFakeFc(dir, { document: docPath, version: "1.16.1" });
 * const driver = new FirecrackerDriver({ binary: fake.path, processExe: fake.processExe });
 * ```
 */
export function writeFakeFc(dir: string, config: FakeVmmConfig): Promise<FakeBinary> {
  return writeFakeBinary(dir, "firecracker", new URL(import.meta.url), config);
}

type FcState = "Not started" | "Running" | "Paused";

interface Drive {
  drive_id: string;
  path_on_host?: string;
  is_read_only?: boolean;
}

function fault(message: string, status = 400): Response {
  return Response.json({ fault_message: message }, { status });
}

const NO_CONTENT = () => new Response(null, { status: 204 });

async function opens(path: string | undefined): Promise<string | null> {
  if (path === undefined) return "no path";
  try {
    (await Deno.open(path, { read: true })).close();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

class FakeFc {
  #config: FakeVmmConfig;
  #contract: OpenApiContract;
  #state: FcState = "Not started";
  #machine = { vcpu_count: 1, mem_size_mib: 128 };
  #boot: { kernel_image_path: string; boot_args?: string; initrd_path?: string } | null = null;
  #drives = new Map<string, Drive>();
  #ifaces = new Map<string, { iface_id: string; host_dev_name: string; guest_mac?: string }>();

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
      return fault(`Invalid JSON: ${(err as Error).message}`);
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
    if (response.status >= 200 && response.status < 300) {
      const answer = await response.clone().text();
      entry.answerProblems = this.#contract.responseProblems(
        req.method,
        path,
        response.status,
        answer === "" ? undefined : JSON.parse(answer),
      );
    }
    traceRequest(this.#config, entry);
    return response;
  }

  #preBoot(): Response | null {
    return this.#state === "Not started"
      ? null
      : fault("The requested operation is not supported after starting the microVM.");
  }

  async #answer(
    method: string,
    path: string,
    body: unknown,
    problems: string[],
  ): Promise<Response> {
    const match = this.#contract.route(method, path);
    if (!match) return fault(`Invalid request method and/or path: ${method} ${path}.`);
    if (problems.length > 0) return fault(problems.join("; "));
    const injected = this.#config.fail?.[`${method} ${path}`];
    if (injected) return fault(injected.message, injected.status);
    const b = (body ?? {}) as Record<string, unknown>;
    switch (`${method} ${match.template}`) {
      case "GET /":
        return Response.json({
          app_name: "Firecracker",
          id: "anonymous-instance",
          state: this.#state,
          vmm_version: this.#config.version,
        });
      case "GET /version":
        return Response.json({ firecracker_version: this.#config.version });
      case "GET /machine-config":
        return Response.json(this.#machine);
      case "PUT /machine-config": {
        const refused = this.#preBoot();
        if (refused) return refused;
        this.#machine = b as { vcpu_count: number; mem_size_mib: number };
        return NO_CONTENT();
      }
      case "PUT /boot-source": {
        const refused = this.#preBoot();
        if (refused) return refused;
        const boot = b as { kernel_image_path: string; boot_args?: string; initrd_path?: string };
        for (const file of [boot.kernel_image_path, boot.initrd_path]) {
          if (file === undefined) continue;
          const error = await opens(file);
          if (error) return fault(`The kernel or initrd file cannot be opened: ${error}`);
        }
        this.#boot = boot;
        return NO_CONTENT();
      }
      case "PUT /drives/{drive_id}": {
        const refused = this.#preBoot();
        if (refused) return refused;
        if (match.params.drive_id !== b.drive_id) {
          return fault("The id from the path does not match the id from the body!");
        }
        const error = await opens(b.path_on_host as string | undefined);
        if (error) return fault(`Unable to create the block device: BackingFile(${error})`);
        this.#drives.set(b.drive_id as string, b as unknown as Drive);
        return NO_CONTENT();
      }
      case "PUT /network-interfaces/{iface_id}": {
        const refused = this.#preBoot();
        if (refused) return refused;
        if (match.params.iface_id !== b.iface_id) {
          return fault("The id from the path does not match the id from the body!");
        }
        for (const other of this.#ifaces.values()) {
          if (other.iface_id === b.iface_id) continue;
          if (other.host_dev_name === b.host_dev_name) {
            return fault(`The host device name ${other.host_dev_name} is already in use.`);
          }
          if (other.guest_mac !== undefined && other.guest_mac === b.guest_mac) {
            return fault(`The MAC address ${other.guest_mac} is already in use.`);
          }
        }
        this.#ifaces.set(b.iface_id as string, b as never);
        return NO_CONTENT();
      }
      case "PUT /actions":
        return this.#action(String(b.action_type));
      case "PATCH /vm":
        if (this.#state === "Not started") {
          return fault("The requested operation is not supported before starting the microVM.");
        }
        this.#state = b.state === "Paused" ? "Paused" : "Running";
        return NO_CONTENT();
      default:
        return fault(`${method} ${path} is not simulated by the fake`);
    }
  }

  #action(type: string): Response {
    if (type === "FlushMetrics") return NO_CONTENT();
    if (type === "InstanceStart") {
      const refused = this.#preBoot();
      if (refused) return refused;
      if (!this.#boot) {
        return fault("Cannot start microvm without kernel configuration.");
      }
      this.#state = "Running";
      this.#runGuest();
      return NO_CONTENT();
    }
    // SendCtrlAltDel
    if (this.#state === "Not started") {
      return fault("The requested operation is not supported before starting the microVM.");
    }
    if (this.#state === "Running" && !guestIgnoresPower(this.#boot?.boot_args ?? "")) {
      // The guest reboots; the i8042 reset makes Firecracker exit.
      setTimeout(() => Deno.exit(0), 20);
    }
    return NO_CONTENT();
  }

  #runGuest(): void {
    const tick = async () => {
      if (this.#state === "Paused") return void setTimeout(tick, 20);
      const lines = await fakeGuestLines(
        this.#boot?.boot_args ?? "",
        [...this.#drives.values()].map((d) => d.path_on_host ?? ""),
        this.#config,
      );
      await Deno.stdout.write(new TextEncoder().encode(lines));
    };
    setTimeout(tick, this.#config.guestDelayMs ?? 30);
  }
}

async function main(args: string[]): Promise<void> {
  const config = await startFake(args, (v) => `Firecracker v${v}\n`);
  if (!config) return;
  const socket = argValue(args, "--api-sock") ?? "/run/firecracker.socket";
  if (await Deno.lstat(socket).then(() => true, () => false)) {
    console.error(
      `Error: RunWithApi(FailedToBindSocket): Failed to open the API socket at: ${socket}. ` +
        "Check that it is not already used.",
    );
    Deno.exit(1);
  }
  const contract = await OpenApiContract.load(config.document);
  const fake = new FakeFc(config, contract);
  Deno.serve({ path: socket, onListen() {} }, (req) => fake.handle(req));
}

if (import.meta.main) await main(Deno.args);
