/**
 * What kestrel brings up after the boot steps and before it says it is ready: the guest's
 * network (when the boot config has one), then the HTTP API. A dry run says what it would do.
 *
 * @module
 */
import type { Timeline } from "./timeline.ts";
import { AGENT_PORT } from "../schema/agent.ts";
import { GUEST_ROOT_DIR, type ImageRoot } from "../schema/boot_config.ts";
import { assembleImageRoot } from "./image_root.ts";
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_REC } from "./libc.ts";
import type { Reaper } from "./reaper.ts";
import { type ConsoleShell, startConsoleShell } from "./console_shell.ts";
import { type AdoptedRun, killGroup, startWorkload, type Supervisor } from "./workload/mod.ts";
import { apiRoutes, type RoutesOptions } from "./api/routes.ts";
import type { AgentInfo } from "./api/health.ts";
import { requireSecret } from "./api/auth.ts";
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
  /**
   * Where the API listens: default the guest's eth0 address and the boot config's port
   * (else {@linkcode AGENT_PORT}), nothing when the boot config has no network; `false` serves
   * nothing.
   */
  api?: ApiAddress | false;
  /** What the API routes use (clock, fetch); defaults are the real ones. */
  routes?: RoutesOptions;
  /** Spawns the workload's processes so PID 1's reaper leaves their exits to Deno. */
  reaper?: Pick<Reaper, "spawn">;
  /** busybox (for nsenter into the workload's root); default `/bin/busybox` of the runtime disk. */
  busybox?: string;
  /** Marks the boot's phases (network, workload started). */
  timeline?: Pick<Timeline, "mark">;
  /**
   * The workload stage 0 already started (`adoptEarlyWorkload`): supervised as the first run,
   * in the root stage 0 prepared.
   */
  adopt?: AdoptedRun;
}

/**
 * The workload's root: the boot config's `workload_root`, else the initramfs root stage 0
 * binds at {@linkcode GUEST_ROOT_DIR} when it exists, else `/`.
 */
function workloadRoot(booted: BootResult): string {
  const wanted = booted.config?.workload_root;
  if (wanted) return wanted;
  try {
    return Deno.statSync(GUEST_ROOT_DIR).isDirectory ? GUEST_ROOT_DIR : "/";
  } catch {
    return "/";
  }
}

/** Assembles an image's root at `root`; false (and a log line) when it cannot. */
async function imageRootReady(
  system: System,
  image: ImageRoot,
  root: string,
  booted: BootResult,
  info: AgentInfo,
): Promise<boolean> {
  try {
    await assembleImageRoot(system, image, root, {
      hostname: booted.hostname,
      ip: info.ip ?? undefined,
    });
    return true;
  } catch (err) {
    system.log(
      `cannot assemble the image root at ${root}: ${(err as Error).message}; ` +
        "the workload does not start",
    );
    return false;
  }
}

/** Gives a workload root its own /proc and /sys and the guest's /dev (nsenter mounts nothing). */
function prepareRoot(system: System, root: string): void {
  if (root === "/") return;
  const mounts = [
    {
      source: "proc",
      target: `${root}/proc`,
      fstype: "proc",
      flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
    },
    {
      source: "sysfs",
      target: `${root}/sys`,
      fstype: "sysfs",
      flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
    },
    { source: "/dev", target: `${root}/dev`, fstype: "", flags: MS_BIND | MS_REC },
  ];
  for (const m of mounts) {
    Deno.mkdirSync(m.target, { recursive: true });
    system.mount(m);
  }
}

/**
 * Where the API listens: the guest's eth0 address only (never `0.0.0.0`: not on loopback, so not
 * to a workload's port-forwarder or other interfaces), on the boot config's port. `undefined`:
 * not served (no network, or `false`).
 */
function apiAddress(
  booted: BootResult,
  network: ConfiguredNetwork | undefined,
  wanted: ApiAddress | false | undefined,
): Required<ApiAddress> | undefined {
  if (wanted === false) return undefined;
  const port = wanted?.port ?? booted.config?.agent?.port ?? AGENT_PORT;
  const hostname = wanted?.hostname ?? network?.ip;
  return hostname === undefined ? undefined : { hostname, port };
}

/** What {@linkcode startServices} brought up. */
export interface Services {
  /** The configured network, when the boot config has one. */
  network: ConfiguredNetwork | undefined;
  /** What `/healthz` reports. */
  info: AgentInfo;
  /**
   * Starts the root shell on the serial console when the boot config asks for one; called once
   * the ready line is out, so the prompt never splits it.
   */
  startConsoleShell(): void;
  /** The API server; undefined in a dry run or when not served. */
  api: ApiServer | undefined;
  /** The plugin's supervised workload, when the boot config carries a manifest. */
  workload: Supervisor | undefined;
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
  if (network !== undefined) options.timeline?.mark("network_ms");
  const info: AgentInfo = {
    name: booted.name,
    hostname: booted.hostname,
    status: booted.problems.length === 0 ? "ok" : "degraded",
    ip: network?.ip ?? null,
    mac: network?.nicMac ?? null,
  };
  const manifest = booted.config?.manifest;
  const adopt = options.adopt;
  if (adopt !== undefined && (manifest === undefined || booted.config?.image_root !== undefined)) {
    system.log(
      `ending pid ${adopt.pid}: stage 0 started a workload this boot config does not have`,
    );
    killGroup(adopt.pid, "SIGKILL");
  }
  let workload: Supervisor | undefined;
  if (manifest !== undefined) {
    const root = workloadRoot(booted);
    const image = booted.config?.image_root;
    if (system.dryRun) {
      system.log(`dry run: would start workload ${manifest.name} in ${root}`);
    } else if (image !== undefined && !(await imageRootReady(system, image, root, booted, info))) {
      info.status = "degraded";
    } else {
      // Stage 0 gave the root its /proc, /sys and /dev when it started the workload itself.
      if (adopt === undefined) prepareRoot(system, root);
      const reaper = options.reaper;
      workload = startWorkload(manifest, {
        root,
        busybox: options.busybox ?? "/bin/busybox",
        ...(reaper ? { spawn: (cmd, opts) => reaper.spawn(cmd, opts) } : {}),
        ...(adopt ? { adopt } : {}),
      });
      options.timeline?.mark("workload_ms");
      system.log(
        `workload ${manifest.name} ${manifest.version} ${
          adopt ? `started by stage 0 (pid ${adopt.pid}), adopted` : "starting"
        } in ${root}`,
      );
    }
  }
  let api: ApiServer | undefined;
  const address = apiAddress(booted, network, options.api);
  if (address === undefined) {
    if (options.api === undefined) {
      system.log("no network in the boot config: the HTTP API is not served");
    }
  } else {
    const where = `${address.hostname}:${address.port}`;
    const secret = booted.config?.agent?.secret;
    if (secret === undefined) {
      system.log(
        `warning: no agent secret in the boot config: the API on ${where} refuses every request`,
      );
    }
    if (system.dryRun) {
      system.log(`dry run: would serve the HTTP API on ${where}`);
    } else {
      const router = createRouter(
        apiRoutes(info, { ...options.routes, ...(workload ? { workload } : {}) }),
      );
      api = startApi(requireSecret(secret, router), address);
    }
  }
  let shell: ConsoleShell | undefined;
  return {
    network,
    info,
    api,
    workload,
    startConsoleShell() {
      if (booted.config?.console_shell !== true || shell !== undefined) return;
      if (system.dryRun) {
        system.log("dry run: would run a shell on the serial console");
        return;
      }
      const reaper = options.reaper;
      shell = startConsoleShell({
        busybox: options.busybox ?? "/bin/busybox",
        log: (line) => system.log(line),
        ...(reaper ? { spawn: (cmd, opts) => reaper.spawn(cmd, opts) } : {}),
      });
    },
    async stop() {
      await shell?.stop();
      await workload?.stop().catch(() => {});
      await api?.stop();
    },
  };
}
