/**
 * volantd's entry point: flags, config, network namespace, directories, store, driver,
 * guest artifacts, the host network (bridge, forwarding, NAT), reconciliation, then the API
 * on the unix socket until SIGTERM/SIGINT.
 * Shutting down closes the listeners and the database but leaves VMs running; the next
 * start re-adopts them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { HypervisorChoice } from "../schema/mod.ts";
import { type EnvLookup, loadConfig, type ResolvedConfig } from "./config.ts";
import { asChoice, defaultDriverFactory, type DriverFactory } from "./driver_factory.ts";
import { type GuestArtifacts, guestDirArtifacts } from "./guest.ts";
import { readHostCmdline } from "./host.ts";
import { createLogger, type Logger } from "./log.ts";
import { type HostNetwork, netHostNetwork, poolFromConfig } from "./network/mod.ts";
import { enterNamespace } from "./netns.ts";
import { reconcile } from "./services/reconcile.ts";
import { setupJail } from "./jail.ts";
import { parseHostPort, prepareSocket, serveDaemon } from "./server.ts";
import {
  DeploymentService,
  ImageService,
  PluginService,
  REGISTRY_CREDENTIALS_FILE,
  RegistryCredentialService,
  serviceConfigFrom,
  startEventRetention,
  TokenService,
  VmRestarter,
  VmService,
} from "./services/mod.ts";
import { ImageStore } from "../images/mod.ts";
import { ArtifactCache } from "./artifacts/mod.ts";
import { openStore } from "./store/mod.ts";
import { checkTcpListener, createApp } from "./api/mod.ts";
import { VERSION } from "./version.ts";
import { imageFaultPoint } from "./fault.ts";

/** The `--help` text. */
export const USAGE = `volantd ${VERSION} — the Volant microVM daemon

Usage: volantd [--config <file>] [--hypervisor <name>]

Options:
  -c, --config <file>      Config file (YAML or JSON). Default: $VOLANT_CONFIG, else
                           /etc/volant/config.yaml when it exists, else built-in defaults.
      --hypervisor <name>  auto, cloud-hypervisor, firecracker or qemu: overrides
                           hypervisor.name (and $VOLANT_HYPERVISOR). auto takes the first
                           usable of cloud-hypervisor, firecracker, qemu.
  -h, --help               Show this help.

Environment overrides: VOLANT_STATE_DIR VOLANT_RUNTIME_DIR VOLANT_LOG_DIR VOLANT_SOCKET
VOLANT_API_TCP VOLANT_NETNS VOLANT_HYPERVISOR VOLANT_GUEST_DIR.
The REST API listens on <runtime_dir>/volantd.sock (GET /openapi.json describes it).
`;

/** Seams for tests and for the lead's wiring. */
export interface MainOptions {
  /** Builds the hypervisor driver; default {@linkcode defaultDriverFactory}. */
  driverFactory?: DriverFactory;
  /** Guest artifacts; default the files in `guest.dir`. */
  guestFactory?: (config: ResolvedConfig) => GuestArtifacts;
  /**
   * The host network; default the real one over `net/` in the daemon's namespace (tests that
   * must not touch the host pass a `FakeHostNetwork`).
   */
  networkFactory?: (config: ResolvedConfig) => HostNetwork;
  /** Environment lookup; default `Deno.env.get`. */
  env?: EnvLookup;
  /** Aborting it shuts the daemon down like SIGTERM. */
  signal?: AbortSignal;
  /** Logger; default JSON lines on stderr. */
  logger?: Logger;
  /** Called once the API listens. */
  onListening?: (info: { socket: string; tcp: { hostname: string; port: number } | null }) => void;
}

function waitForStop(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((name) => {
      const handler = () => done(name);
      Deno.addSignalListener(name, handler);
      return [name, handler] as const;
    });
    const onAbort = () => done("abort");
    signal?.addEventListener("abort", onAbort);
    function done(reason: string) {
      for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
      signal?.removeEventListener("abort", onAbort);
      resolve(reason);
    }
    if (signal?.aborted) done("abort");
  });
}

function defaultNetwork(config: ResolvedConfig): HostNetwork {
  const { bridge, subnet, gateway, nat, isolation } = config.network;
  return netHostNetwork({ bridge, subnet, gateway, nat, isolation });
}

/**
 * Who may read what volantd writes: the state (database, disks, caches) is root's alone; logs
 * and the runtime dir (socket, VM sockets) are readable by the `volant` group when it exists.
 * The umask covers every file volantd and its VMMs create (serial and VMM logs 0640).
 */
export const DIR_MODES = { state_dir: 0o700, runtime_dir: 0o750, log_dir: 0o750 } as const;

/** Sets the umask and makes the directories; resolves to the umask it replaced. */
async function prepareDirs(config: ResolvedConfig): Promise<number> {
  const previous = Deno.umask(0o027);
  for (const [key, mode] of Object.entries(DIR_MODES)) {
    const dir = config[key as keyof typeof DIR_MODES];
    await Deno.mkdir(dir, { recursive: true, mode });
    await Deno.chmod(dir, mode);
  }
  return previous;
}

async function run(config: ResolvedConfig, options: MainOptions, logger: Logger): Promise<number> {
  const umask = await prepareDirs(config);
  try {
    return await serve(config, options, logger);
  } finally {
    Deno.umask(umask); // for in-process callers (tests); volantd itself exits next
  }
}

async function serve(
  config: ResolvedConfig,
  options: MainOptions,
  logger: Logger,
): Promise<number> {
  await Deno.mkdir(`${config.runtime_dir}/vms`, { recursive: true });
  await Deno.mkdir(`${config.log_dir}/vms`, { recursive: true });
  // Refuse before touching any VM when another daemon already serves this socket.
  await prepareSocket(config.api.socket);

  const store = openStore(`${config.state_dir}/volant.db`);
  // It holds image env overrides (often secrets) and kestrel's per-VM secrets.
  await Deno.chmod(`${config.state_dir}/volant.db`, 0o600);
  let service: VmService | undefined;
  let restarter: VmRestarter | undefined;
  let deployments: DeploymentService | undefined;
  // The event log: pruned to events.retention_days and events.max_rows now and periodically.
  const retention = startEventRetention({
    log: store.events,
    retentionDays: config.events.retention_days,
    maxRows: config.events.max_rows,
    everyMs: config.events.prune_interval_ms,
    logger,
  });
  try {
    // api.tcp: refused before anything else when it would be open, warned when insecure.
    const tokens = new TokenService({ store: store.tokens, logger });
    const insecure = checkTcpListener(config.api, tokens.activeCount());
    if (insecure !== null) {
      logger.warn("api.tcp_insecure", { tcp: config.api.tcp, warning: insecure });
    } else if (config.api.tcp !== null && tokens.activeCount() === 0) {
      logger.warn("api.tcp has no tokens yet", {
        tcp: config.api.tcp,
        hint: "every TCP request gets 401 until one exists: volar tokens create <name>",
      });
    }
    const registries = new RegistryCredentialService({
      file: `${config.state_dir}/${REGISTRY_CREDENTIALS_FILE}`,
      logger,
    });
    const { driver, acceleration } = asChoice(
      await (options.driverFactory ?? defaultDriverFactory)(config, logger),
    );
    const probe = await driver.probe();
    if (!probe.available) {
      logger.warn("hypervisor unavailable", { driver: driver.name, reason: probe.reason });
    }
    // VMM jails: refused here, before any VM, when the host cannot have them.
    const jail = await setupJail(config.security, config.runtime_dir, driver, logger);
    const guest = (options.guestFactory ?? ((c) => guestDirArtifacts(c.guest.dir)))(config);
    const network = (options.networkFactory ?? defaultNetwork)(config);
    const prepared = await network.prepare();
    logger.info("host network ready", {
      network: network.description,
      subnet: config.network.subnet,
      gateway: config.network.gateway,
      changes: prepared.changes,
    });
    if (!config.network.isolation) {
      logger.warn("network.isolation is off", {
        warning: "VMs' network policies are not enforced: every guest reaches the others, the " +
          "host and its networks (set network.isolation: true)",
      });
    }
    const plugins = new PluginService({
      store,
      cache: new ArtifactCache(config.state_dir, { maxBytes: config.limits.max_artifact_bytes }),
      logger,
    });
    // Blobs and temp files an install cut short (volantd killed) left in the artifact cache.
    const recovered = await plugins.recover();
    if (recovered.blobs + recovered.temp > 0) logger.info("artifact cache cleaned", recovered);
    const imageStore = new ImageStore(`${config.state_dir}/images`, {
      maxUnpackedBytes: config.images.max_unpacked_bytes,
      onStep: imageFaultPoint,
    });
    // Temp files, unpack trees and inert mounts an interrupted pull left; unused blobs.
    const gc = await imageStore.gc();
    if (gc.temp + gc.blobs + gc.rootfs > 0) logger.info("image store cleaned", { ...gc });
    const images = new ImageService({
      store: imageStore,
      vms: store.vms,
      events: store.events,
      insecureRegistries: config.images.insecure_registries,
      credentials: (registry) => registries.lookup(registry),
      logger,
    });
    service = new VmService({
      store,
      driver,
      plugins,
      images,
      guest,
      network,
      pool: poolFromConfig(config.network),
      config: { ...serviceConfigFrom(config, await readHostCmdline(driver.kvm)), jail },
      logger,
    });
    // Replica names are reserved before the first request.
    deployments = new DeploymentService({
      store,
      vms: service,
      plugins,
      images,
      settings: { ...config.deployments, crash_loop_after: config.restart.crash_loop_after },
      logger,
    });
    await reconcile(service);
    // Snapshot directories a save cut short (volantd killed mid-way) left.
    await service.snapshots.gc();
    // VMs left crashed under a restart policy, and deployments' replicas, from here on.
    restarter = new VmRestarter(service, config.restart, logger);
    restarter.start();
    deployments.start();
    const app = createApp({
      service,
      plugins,
      images,
      deployments,
      version: VERSION,
      hypervisor: {
        name: driver.name,
        version: probe.version ?? null,
        kvm: driver.kvm,
        acceleration,
      },
      logger,
      maxBodyBytes: config.api.max_body_bytes,
      tokens,
      registries,
      access: {
        tokens,
        allowedHosts: config.api.allowed_hosts,
        tcpHost: config.api.tcp === null ? null : parseHostPort(config.api.tcp).hostname,
        tcpInsecure: config.api.tcp_insecure,
      },
    });
    const server = await serveDaemon({
      handler: app.fetch,
      socket: config.api.socket,
      socketMode: config.api.socket_mode,
      socketGroup: config.api.socket_group,
      tcp: config.api.tcp,
      logger,
    });
    logger.info("volantd ready", {
      version: VERSION,
      pid: Deno.pid,
      driver: driver.name,
      kvm: driver.kvm,
      accel: acceleration.accel,
      accel_reason: acceleration.reason,
      state_dir: config.state_dir,
      guest_dir: guest.dir,
    });
    options.onListening?.({ socket: server.socket, tcp: server.tcp });
    const why = await waitForStop(options.signal);
    logger.info("shutting down; VMs keep running", { reason: why });
    restarter.close();
    await deployments.close();
    await service.close();
    await server.close();
    return 0;
  } finally {
    retention.stop();
    restarter?.close();
    await deployments?.close();
    await service?.close();
    store.close();
  }
}

/**
 * Runs volantd with its command-line arguments; resolves to the exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  let flags: { config?: string; hypervisor?: string; help?: boolean };
  try {
    flags = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        hypervisor: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    console.error(`volantd: ${(err as Error).message} (see volantd --help)`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const hypervisor = HypervisorChoice.safeParse(flags.hypervisor);
  if (flags.hypervisor !== undefined && !hypervisor.success) {
    console.error(
      `volantd: --hypervisor: expected one of ${HypervisorChoice.options.join(", ")}, ` +
        `got ${JSON.stringify(flags.hypervisor)} (see volantd --help)`,
    );
    return 2;
  }
  const logger = options.logger ?? createLogger();
  const env = options.env ?? ((key: string) => Deno.env.get(key));
  try {
    const loaded = await loadConfig({ path: flags.config, env });
    const config = hypervisor.success
      ? { ...loaded, hypervisor: { ...loaded.hypervisor, name: hypervisor.data } }
      : loaded;
    if (config.network.namespace) {
      const code = await enterNamespace(config.network.namespace, env, logger);
      if (code !== null) return code;
      logger.info("inside network namespace", { netns: config.network.namespace });
    }
    return await run(config, options, logger);
  } catch (err) {
    logger.error("volantd failed", { error: err });
    return 1;
  }
}
