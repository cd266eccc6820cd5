/**
 * Firecracker's REST API as this driver uses it: one table of endpoints (paths as the API
 * document writes them, so tests check each row against it) and a small client over the unix
 * socket. The VMM's command surface is its action type: `InstanceStart` boots, `SendCtrlAltDel`
 * is the graceful step of the stop ladder; `PATCH /vm` pauses and resumes; `/snapshot/create`
 * and `/snapshot/load` save and restore a guest.
 *
 * @module
 */
import { type HttpMethod, restJson } from "../rest/unix_http.ts";
import type { FcConfigRequest, FcSnapshotCreate, FcSnapshotLoad } from "./config.ts";

/** Every call the driver makes: action name → method and path template. */
export const FC_ENDPOINTS = {
  info: { method: "GET", path: "/" },
  machineConfig: { method: "PUT", path: "/machine-config" },
  bootSource: { method: "PUT", path: "/boot-source" },
  drive: { method: "PUT", path: "/drives/{drive_id}" },
  networkInterface: { method: "PUT", path: "/network-interfaces/{iface_id}" },
  action: { method: "PUT", path: "/actions" },
  vmState: { method: "PATCH", path: "/vm" },
  snapshotCreate: { method: "PUT", path: "/snapshot/create" },
  snapshotLoad: { method: "PUT", path: "/snapshot/load" },
} as const satisfies Record<string, { method: HttpMethod; path: string }>;

/** The action types this driver sends to `PUT /actions`. */
export type FcActionType = "InstanceStart" | "SendCtrlAltDel";

/** Firecracker's instance states (`GET /`). */
export type FcInstanceState = "Not started" | "Running" | "Paused";

/** `GET /`'s answer. */
export interface FcInstanceInfo {
  app_name: string;
  id: string;
  state: FcInstanceState;
  vmm_version: string;
}

/** Options of {@linkcode FcApi}. */
export interface FcApiOptions {
  /** Limit for each request; default 5000 ms. */
  timeoutMs?: number;
  /** Limit for `InstanceStart` (it loads kernel and initramfs); default 30 000 ms. */
  bootTimeoutMs?: number;
  /** Limit for `/snapshot/create` and `/snapshot/load` (all guest memory); default 120 000 ms. */
  stateTimeoutMs?: number;
}

/**
 * A client for one Firecracker API socket. Non-2xx answers throw the `VolantError` of
 * `restApiError` (its message is Firecracker's `fault_message`); no answer throws `vmm_failed`
 * or `timeout`.
 *
 * @example
 * ```ts ignore
 * import { FcApi } from "./api.ts";
 * const api = new FcApi("/run/volant/vms/web/fc.sock");
 * console.log((await api.info()).state);
 * ```
 */
export class FcApi {
  readonly socket: string;
  readonly #timeoutMs: number;
  readonly #bootTimeoutMs: number;
  readonly #stateTimeoutMs: number;

  /** A client for the API on `socket`. */
  constructor(socket: string, options: FcApiOptions = {}) {
    this.socket = socket;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#bootTimeoutMs = options.bootTimeoutMs ?? 30_000;
    this.#stateTimeoutMs = options.stateTimeoutMs ?? 120_000;
  }

  /** Sends one request and returns the parsed answer (undefined for 204). */
  async request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<T> {
    return await restJson<T>("Firecracker", this.socket, {
      method,
      path,
      ...(body === undefined ? {} : { body }),
      timeoutMs: timeoutMs ?? this.#timeoutMs,
    });
  }

  /** `GET /`: the instance's state and version. */
  info(timeoutMs?: number): Promise<FcInstanceInfo> {
    return this.request<FcInstanceInfo>("GET", FC_ENDPOINTS.info.path, undefined, timeoutMs);
  }

  /** Sends one pre-boot configuration request. */
  async configure(request: FcConfigRequest): Promise<void> {
    await this.request(request.method, request.path, request.body);
  }

  /** `PUT /actions` with `action_type`. */
  async action(type: FcActionType): Promise<void> {
    await this.request(
      "PUT",
      FC_ENDPOINTS.action.path,
      { action_type: type },
      type === "InstanceStart" ? this.#bootTimeoutMs : undefined,
    );
  }

  /** `PATCH /vm`: pause or resume the vCPUs. */
  async setVmState(state: "Paused" | "Resumed"): Promise<void> {
    await this.request("PATCH", FC_ENDPOINTS.vmState.path, { state });
  }

  /** `PUT /snapshot/create`: writes the paused guest's state and memory files. */
  async createSnapshot(params: FcSnapshotCreate): Promise<void> {
    await this.request("PUT", FC_ENDPOINTS.snapshotCreate.path, params, this.#stateTimeoutMs);
  }

  /**
   * `PUT /snapshot/load`: a fresh Firecracker (nothing configured) takes the saved guest.
   * Firecracker exits when the load fails.
   */
  async loadSnapshot(params: FcSnapshotLoad): Promise<void> {
    await this.request("PUT", FC_ENDPOINTS.snapshotLoad.path, params, this.#stateTimeoutMs);
  }
}
