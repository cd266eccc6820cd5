/**
 * What kestrel brings up after the boot steps and before it says it is ready: the guest's
 * network (when the boot config has one), then the HTTP API. A dry run says what it would do.
 *
 * @module
 */
import { AGENT_PORT } from "../schema/agent.ts";
import { apiRoutes, type RoutesOptions } from "./api/routes.ts";
import type { AgentInfo } from "./api/health.ts";
import { createRouter } from "./api/router.ts";
import { type ApiAddress, type ApiServer, startApi } from "./api/server.ts";
import { type ConfiguredNetwork, configureNetwork, type NetOps } from "./network.ts";
import type { BootResult } from "./pid1.ts";
import type { System } from "./system.ts";

/** Options of {@linkcode startServices}. */
export interface ServicesOptions {
  /** Network operations; default sysfs + rtnetlink. */
  net?: NetOps;
  /** How long to wait for the NIC; default 5000 ms. */
  nicTimeoutMs?: number;
  /** Where the API listens (default `0.0.0.0:8080`); `false` serves nothing. */
  api?: ApiAddress | false;
  /** What the API routes use (clock, fetch); defaults are the real ones. */
  routes?: RoutesOptions;
}

/** What {@linkcode startServices} brought up. */
export interface Services {
  /** The configured network, when the boot config has one. */
  network: ConfiguredNetwork | undefined;
  /** What `/healthz` reports. */
  info: AgentInfo;
  /** The API server; undefined in a dry run or when not served. */
  api: ApiServer | undefined;
  /** Stops the API server (bounded); never throws. */
  stop(): Promise<void>;
}

/**
 * Configures the network from the boot config and starts the API (listening when this
 * resolves). Throws on a network or bind failure (kestrel treats it as fatal).
 *
 * @example
 * ```ts ignore
 * import { boot } from "./pid1.ts";
 * import { startServices } from "./services.ts";
 * import { realSystem } from "./system.ts";
 * const system = realSystem();
 * const services = await startServices(system, await boot(system));
 * await services.stop();
 * ```
 */
export async function startServices(
  system: System,
  booted: BootResult,
  options: ServicesOptions = {},
): Promise<Services> {
  const wanted = booted.config?.network;
  const network = wanted === undefined ? undefined : await configureNetwork(system, wanted, {
    ...(options.net === undefined ? {} : { ops: options.net }),
    ...(options.nicTimeoutMs === undefined ? {} : { timeoutMs: options.nicTimeoutMs }),
  });
  const info: AgentInfo = {
    name: booted.name,
    hostname: booted.hostname,
    status: booted.problems.length === 0 ? "ok" : "degraded",
    ip: network?.ip ?? null,
    mac: network?.nicMac ?? null,
  };
  let api: ApiServer | undefined;
  if (options.api !== false) {
    const address = options.api ?? {};
    if (system.dryRun) {
      const where = `${address.hostname ?? "0.0.0.0"}:${address.port ?? AGENT_PORT}`;
      system.log(`dry run: would serve the HTTP API on ${where}`);
    } else {
      api = startApi(createRouter(apiRoutes(info, options.routes)), address);
    }
  }
  return { network, info, api, stop: () => api?.stop() ?? Promise.resolve() };
}
