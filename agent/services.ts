/**
 * What kestrel brings up after the boot steps and before it says it is ready: the guest's
 * network (when the boot config has one), then the HTTP API; after the ready line, the console
 * shell and the guest control channel (new identities for clones). A dry run says what it
 * would do.
 *
 * @module
 */
import type { Timeline } from "./timeline.ts";
import { AGENT_PORT } from "../schema/agent.ts";
import { GUEST_ROOT_DIR, type ImageRoot } from "../schema/boot_config.ts";
import { assembleImageRoot } from "./image_root.ts";
import {
  creditEntropy,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_REC,
  setClock,
} from "./libc.ts";
import type { Reaper } from "./reaper.ts";
import { type ConsoleShell, startConsoleShell } from "./console_shell.ts";
import { type AdoptedRun, killGroup, startWorkload, type Supervisor } from "./workload/mod.ts";
import { apiRoutes, type RoutesOptions } from "./api/routes.ts";
import type { AgentInfo } from "./api/health.ts";
import { createRouter } from "./api/router.ts";
import type { ApiAddress, ApiServer } from "./api/server.ts";
import { ApiBinding } from "./control/api_binding.ts";
import { applyIdentity, type IdentityDeps } from "./control/identity.ts";
import { rewriteHostFiles } from "./control/hosts.ts";
import { type ControlChannel, startControl, type StartControlOptions } from "./control/service.ts";
import { type ConfiguredNetwork, configureNetwork, type NetOps, realNetOps } from "./network.ts";
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
  /** The guest control channel (tests: where the port is, how to open it); `false`: none. */
  control?: ControlOptions | false;
}

/** Options of the control channel: finding and opening the port, and two real-only steps. */
export interface ControlOptions extends Omit<StartControlOptions, "log" | "dryRun"> {
  /** Adds and credits a new identity's entropy; default `creditEntropy` on /dev/urandom. */
  entropy?: IdentityDeps["entropy"];
  /** Steps the wall clock; default `setClock` (`clock_settime(CLOCK_REALTIME)`). */
  clock?: IdentityDeps["clock"];
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
  /** The network configured at boot, when the boot config has one (a new identity updates `info`). */
  network: ConfiguredNetwork | undefined;
  /** What `/healthz` reports. */
  info: AgentInfo;
  /**
   * Starts the root shell on the serial console when the boot config asks for one; called once
   * the ready line is out, so the prompt never splits it.
   */
  startConsoleShell(): void;
  /** The API server now (it moves with a new identity); undefined in a dry run or when not served. */
  readonly api: ApiServer | undefined;
  /** The plugin's supervised workload, when the boot config carries a manifest. */
  workload: Supervisor | undefined;
  /**
   * Opens the guest control port, when the VMM has one, and applies the new identities the
   * daemon sends on it until {@linkcode Services.stop}; called once the ready line is out. In a
   * dry run it only says whether the port exists. Never throws.
   */
  startControlChannel(): Promise<void>;
  /** Stops the control channel, the console shell, the workload and the API (bounded); never throws. */
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
  /** The workload root whose /etc/hostname and /etc/hosts kestrel wrote (an image root). */
  let hostFilesRoot: string | undefined;
  if (manifest !== undefined) {
    const root = workloadRoot(booted);
    const image = booted.config?.image_root;
    if (system.dryRun) {
      system.log(`dry run: would start workload ${manifest.name} in ${root}`);
    } else if (image !== undefined && !(await imageRootReady(system, image, root, booted, info))) {
      info.status = "degraded";
    } else {
      if (image !== undefined) hostFilesRoot = root;
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
  let binding: ApiBinding | undefined;
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
      binding = new ApiBinding(router, secret);
      binding.listen(address);
    }
  }
  let shell: ConsoleShell | undefined;
  let control: Promise<ControlChannel | undefined> | undefined;
  /** The steps of a new identity on this guest (`entropy` and `clock` real unless given). */
  const identityDeps = (steps: Pick<ControlOptions, "entropy" | "clock">): IdentityDeps => {
    const api = binding;
    const sup = workload;
    const root = hostFilesRoot;
    return {
      current: { generation: 0, name: booted.name, hostname: booted.hostname, network },
      info,
      entropy: steps.entropy ?? ((bytes) => creditEntropy(bytes)),
      clock: steps.clock ?? ((ms) => setClock(ms)),
      sethostname: (name) => system.sethostname(name),
      ...(root === undefined ? {} : {
        hostFiles: (old, next) => rewriteHostFiles(root, old, next),
      }),
      net: options.net ?? realNetOps(),
      ...(api === undefined ? {} : {
        api: {
          setSecret: (s) => api.setSecret(s),
          rebind: (a) => api.rebind(a),
          address: () => {
            const server = api.server;
            return server === undefined
              ? undefined
              : { hostname: server.hostname, port: server.port };
          },
        },
      }),
      restoreSignal: manifest?.workload.restore_signal,
      ...(sup === undefined ? {} : { signal: (sig) => sup.signal(sig) }),
      log: (line) => system.log(line),
    };
  };
  return {
    network,
    info,
    get api() {
      return binding?.server;
    },
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
    async startControlChannel() {
      if (control !== undefined || options.control === false) return;
      const { entropy, clock, ...port } = options.control ?? {};
      const deps = identityDeps({
        ...(entropy === undefined ? {} : { entropy }),
        ...(clock === undefined ? {} : { clock }),
      });
      control = startControl((msg) => applyIdentity(msg, deps), {
        device: booted.config?.control_device,
        ...port,
        log: (line) => system.log(line),
        dryRun: system.dryRun,
      }).catch((err) => {
        system.log(`control port: ${(err as Error).message}`);
        return undefined;
      });
      await control;
    },
    async stop() {
      await (await control)?.stop();
      await shell?.stop();
      await workload?.stop().catch(() => {});
      await binding?.stop();
    },
  };
}
