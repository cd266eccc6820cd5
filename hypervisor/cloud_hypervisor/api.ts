/**
 * Cloud Hypervisor's REST API as this driver uses it: one table of endpoints (every call the
 * driver makes is a row, so tests can check each against the API document) and a small client
 * over the unix socket that turns error answers into `VolantError`s with the VMM's message.
 *
 * @module
 */
import type { ChRestoreConfig, ChSnapshotConfig, ChVmConfig } from "./config.ts";
import { type HttpMethod, restJson } from "../rest/unix_http.ts";

/** The base path of every endpoint. */
export const CH_API_BASE = "/api/v1";

/** Every call the driver makes: action name → method and path (under {@linkcode CH_API_BASE}). */
export const CH_ENDPOINTS = {
  ping: { method: "GET", path: "/vmm.ping" },
  create: { method: "PUT", path: "/vm.create" },
  boot: { method: "PUT", path: "/vm.boot" },
  info: { method: "GET", path: "/vm.info" },
  pause: { method: "PUT", path: "/vm.pause" },
  resume: { method: "PUT", path: "/vm.resume" },
  counters: { method: "GET", path: "/vm.counters" },
  powerButton: { method: "PUT", path: "/vm.power-button" },
  shutdownVm: { method: "PUT", path: "/vm.shutdown" },
  shutdownVmm: { method: "PUT", path: "/vmm.shutdown" },
  snapshot: { method: "PUT", path: "/vm.snapshot" },
  restore: { method: "PUT", path: "/vm.restore" },
} as const satisfies Record<string, { method: HttpMethod; path: string }>;

/** One of {@linkcode CH_ENDPOINTS}' actions. */
export type ChAction = keyof typeof CH_ENDPOINTS;

/** `GET /vmm.ping`'s answer. */
export interface ChPing {
  version: string;
  build_version?: string;
  pid?: number;
  features?: string[];
}

/** Cloud Hypervisor's VM states. */
export type ChVmState = "Created" | "Running" | "Shutdown" | "Paused" | "BreakPoint";

/** `GET /vm.info`'s answer (the fields the driver reads). */
export interface ChVmInfo {
  state: ChVmState;
  config: unknown;
  memory_actual_size?: number;
}

/** `GET /vm.counters`' answer: device id → counter name → value. */
export type ChCounters = Record<string, Record<string, number>>;

/** Options of {@linkcode ChApi}. */
export interface ChApiOptions {
  /** Limit for each request; default 5000 ms. */
  timeoutMs?: number;
  /** Limit for `vm.boot` (it loads kernel and initramfs); default 30 000 ms. */
  bootTimeoutMs?: number;
  /** Limit for `vm.snapshot` and `vm.restore` (they copy all guest memory); default 120 000 ms. */
  stateTimeoutMs?: number;
}

/**
 * A client for one Cloud Hypervisor API socket. Non-2xx answers throw the `VolantError` of
 * `restApiError` (its message is the VMM's error chain); no answer throws `vmm_failed` or
 * `timeout`.
 *
 * @example
 * ```ts ignore
 * import { ChApi } from "./api.ts";
 * const api = new ChApi("/run/volant/vms/web/ch.sock");
 * console.log((await api.ping()).version, (await api.info()).state);
 * ```
 */
export class ChApi {
  readonly socket: string;
  readonly #timeoutMs: number;
  readonly #bootTimeoutMs: number;
  readonly #stateTimeoutMs: number;

  /** A client for the API on `socket`. */
  constructor(socket: string, options: ChApiOptions = {}) {
    this.socket = socket;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#bootTimeoutMs = options.bootTimeoutMs ?? 30_000;
    this.#stateTimeoutMs = options.stateTimeoutMs ?? 120_000;
  }

  /** Sends `action` (with `body` as JSON) and returns the parsed answer (undefined for 204). */
  async call<T = unknown>(action: ChAction, body?: unknown, timeoutMs?: number): Promise<T> {
    const endpoint = CH_ENDPOINTS[action];
    return await restJson<T>("Cloud Hypervisor", this.socket, {
      method: endpoint.method,
      path: `${CH_API_BASE}${endpoint.path}`,
      ...(body === undefined ? {} : { body }),
      timeoutMs: timeoutMs ?? this.#timeoutMs,
    });
  }

  /** `GET /vmm.ping`. */
  ping(timeoutMs?: number): Promise<ChPing> {
    return this.call<ChPing>("ping", undefined, timeoutMs);
  }

  /** `PUT /vm.create`: stores the VM's configuration (nothing runs yet). */
  async create(config: ChVmConfig): Promise<void> {
    await this.call("create", config);
  }

  /** `PUT /vm.boot`. */
  async boot(): Promise<void> {
    await this.call("boot", undefined, this.#bootTimeoutMs);
  }

  /** `GET /vm.info`. */
  info(): Promise<ChVmInfo> {
    return this.call<ChVmInfo>("info");
  }

  /** `PUT /vm.pause`. */
  async pause(): Promise<void> {
    await this.call("pause");
  }

  /** `PUT /vm.resume`. */
  async resume(): Promise<void> {
    await this.call("resume");
  }

  /** `GET /vm.counters`. */
  counters(): Promise<ChCounters> {
    return this.call<ChCounters>("counters");
  }

  /** `PUT /vm.power-button`: the ACPI power button. */
  async powerButton(): Promise<void> {
    await this.call("powerButton");
  }

  /** `PUT /vm.shutdown`: tears the VM down; the VMM process stays. */
  async shutdownVm(): Promise<void> {
    await this.call("shutdownVm");
  }

  /** `PUT /vmm.shutdown`: the VMM process exits. */
  async shutdownVmm(): Promise<void> {
    await this.call("shutdownVmm");
  }

  /** `PUT /vm.snapshot`: writes the paused VM's state into the existing directory named. */
  async snapshot(config: ChSnapshotConfig): Promise<void> {
    await this.call("snapshot", config, this.#stateTimeoutMs);
  }

  /** `PUT /vm.restore`: a VMM without a VM takes the VM saved in the directory named. */
  async restore(config: ChRestoreConfig): Promise<void> {
    await this.call("restore", config, this.#stateTimeoutMs);
  }
}
