/**
 * Test fixtures for the daemon: temp directories, a dummy guest dir, a real SQLite file,
 * the fake driver, a fake host network (shared by every "daemon" of an env, like the kernel's)
 * and a VM service over them. Not part of the public API.
 *
 * @module
 */
import { ArtifactCache } from "./artifacts/mod.ts";
import { PluginService } from "./services/plugins.ts";
import { FakeDriver, type FakeDriverOptions, FakeRegistry } from "../hypervisor/fake/mod.ts";
import { definePool, type Pool, type PoolSpec } from "../net/mod.ts";
import { guestDirArtifacts } from "./guest.ts";
import { createLogger, type Logger } from "./log.ts";
import { fakeGuestAgent, FakeHostNetwork, type HostNetwork } from "./network/mod.ts";
import {
  DeploymentService,
  type DeploymentSettings,
  REGISTRY_CREDENTIALS_FILE,
  RegistryCredentialService,
  type RestartSettings,
  TokenService,
  VmRestarter,
  VmService,
} from "./services/mod.ts";
import type { VmServiceConfig } from "./services/mod.ts";
import { openStore, type Store } from "./store/mod.ts";
import type { Hono } from "hono";
import { createApp } from "./api/app.ts";
import type { Connect } from "./kestrel/mod.ts";
import { VERSION } from "./version.ts";

/** A daemon's worth of state in a temp dir. */
export interface TestEnv {
  root: string;
  stateDir: string;
  runtimeDir: string;
  logDir: string;
  guestDir: string;
  dbPath: string;
  registry: FakeRegistry;
  /** Log lines written by every service of this env. */
  logs: string[];
  logger: Logger;
  config: VmServiceConfig;
  /** The address pool (default 192.168.127.0/24, gateway .1). */
  pool: Pool;
  /** The fake host network every daemon of this env shares. */
  network: FakeHostNetwork;
  /**
   * Opens a store, a fake driver on the shared registry and a service (a "daemon"), on the
   * shared fake network unless `network` is given.
   */
  open(
    driverOptions?: Omit<FakeDriverOptions, "registry">,
    network?: HostNetwork,
  ): TestDaemon;
  /** Closes every daemon, ends every fake process, removes the temp dir. */
  dispose(): Promise<void>;
}

/** One "daemon instance" of a {@linkcode TestEnv}. */
export interface TestDaemon {
  store: Store;
  driver: FakeDriver;
  service: VmService;
  plugins: PluginService;
  /** Deployments (replica names reserved; the reconciler runs after {@linkcode start}). */
  deployments: DeploymentService;
  /** Restart policies (after {@linkcode start}). */
  restarter: VmRestarter;
  /** Starts the restarter and the deployment reconciler, as volantd does after reconcile. */
  start(): void;
  close(): Promise<void>;
}

/** Restart settings of test daemons: fast backoff. */
export const TEST_RESTART: RestartSettings = {
  initial_ms: 20,
  max_ms: 200,
  stable_ms: 1_000,
  max_retries: 3,
  crash_loop_after: 3,
};

/** Deployment settings of test daemons: quick resyncs. */
export const TEST_DEPLOYMENTS: DeploymentSettings = {
  max_replicas: 100,
  parallel: 8,
  unhealthy_after_ms: 300,
  resync_ms: 50,
  crash_loop_after: TEST_RESTART.crash_loop_after,
};

/** The pool tests use unless they pass one. */
export const TEST_POOL: PoolSpec = { subnet: "192.168.127.0/24", gateway: "192.168.127.1" };

/** Creates a temp env with a dummy guest dir (bzImage-volant, initramfs.cpio, runtime.erofs). */
export async function makeTestEnv(
  overrides: Partial<VmServiceConfig> = {},
  pool: PoolSpec = TEST_POOL,
): Promise<TestEnv> {
  const root = await Deno.makeTempDir({ prefix: "volantd-test-" });
  const stateDir = `${root}/state`;
  const runtimeDir = `${root}/run`;
  const logDir = `${root}/log`;
  const guestDir = `${root}/guest`;
  for (const dir of [stateDir, runtimeDir, logDir, guestDir]) await Deno.mkdir(dir);
  for (const file of ["bzImage-volant", "initramfs.cpio", "runtime.erofs"]) {
    await Deno.writeTextFile(`${guestDir}/${file}`, "dummy\n");
  }
  const registry = new FakeRegistry();
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => logs.push(line) });
  const config: VmServiceConfig = {
    runtimeDir,
    logDir,
    stateDir,
    defaultKernel: "bzImage-volant",
    readyMs: 5_000,
    stopGracefulMs: 200,
    stopTermMs: 100,
    hostCmdline: "tsc=reliable",
    pollMs: 10,
    probeIntervalMs: 10,
    probeTimeoutMs: 100,
    ...overrides,
  };
  const daemons: TestDaemon[] = [];
  const env: TestEnv = {
    root,
    stateDir,
    runtimeDir,
    logDir,
    guestDir,
    dbPath: `${stateDir}/volant.db`,
    registry,
    logs,
    logger,
    config,
    pool: definePool(pool),
    network: new FakeHostNetwork({ agent: fakeGuestAgent(registry) }),
    open(driverOptions = {}, network) {
      const store = openStore(env.dbPath);
      const driver = new FakeDriver({ ...driverOptions, registry });
      const plugins = new PluginService({ store, cache: new ArtifactCache(stateDir), logger });
      const service = new VmService({
        store,
        driver,
        plugins,
        guest: guestDirArtifacts(guestDir),
        network: network ?? env.network,
        pool: env.pool,
        config: env.config,
        logger,
      });
      let closed = false;
      const deployments = new DeploymentService({
        store,
        vms: service,
        plugins,
        settings: TEST_DEPLOYMENTS,
        logger,
      });
      const restarter = new VmRestarter(service, TEST_RESTART, logger);
      const daemon: TestDaemon = {
        store,
        driver,
        service,
        plugins,
        deployments,
        restarter,
        start() {
          restarter.start();
          deployments.start();
        },
        async close() {
          if (closed) return;
          closed = true;
          restarter.close();
          await deployments.close();
          await service.close();
          store.close();
        },
      };
      daemons.push(daemon);
      return daemon;
    },
    async dispose() {
      for (const d of daemons) await d.close();
      registry.dispose();
      await Deno.remove(root, { recursive: true });
    },
  };
  return env;
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` and returns the error it throws (fails when it does not). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected an error, got none");
}

/** `fetch` through a unix socket; the body is read before the client is closed (JSON parsed, other text as is). */
export async function unixFetch(
  socket: string,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown }> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const res = await fetch(`http://volant${path}`, { ...init, client });
    const text = await res.text();
    if (text === "") return { status: res.status, body: null };
    const json = res.headers.get("content-type")?.includes("json") ?? false;
    return { status: res.status, body: json ? JSON.parse(text) : text };
  } finally {
    client.close();
  }
}

/**
 * The REST app (with MCP) over a fresh daemon of `env`, as volantd builds it (fake driver).
 *
 * @example
 * ```ts ignore
 * const { app, daemon } = testApp(await makeTestEnv());
 * const res = await app.request("/healthz");
 * ```
 */
export function testApp(
  env: TestEnv,
  access: { allowedHosts?: string[]; tcpInsecure?: boolean } = {},
  options: { kestrelConnect?: Connect } = {},
): { app: Hono; daemon: TestDaemon; tokens: TokenService } {
  const daemon = env.open();
  const tokens = new TokenService({ store: daemon.store.tokens, logger: env.logger });
  const app = createApp({
    service: daemon.service,
    plugins: daemon.plugins,
    deployments: daemon.deployments,
    ...(options.kestrelConnect ? { kestrelConnect: options.kestrelConnect } : {}),
    version: VERSION,
    hypervisor: {
      name: daemon.driver.name,
      version: "fake-1.0",
      kvm: false,
      acceleration: { accel: "tcg", reason: "software emulation", probe: null },
    },
    logger: env.logger,
    tokens,
    registries: new RegistryCredentialService({
      file: `${env.stateDir}/${REGISTRY_CREDENTIALS_FILE}`,
      logger: env.logger,
    }),
    access: {
      tokens,
      allowedHosts: access.allowedHosts ?? [],
      tcpHost: "127.0.0.1",
      tcpInsecure: access.tcpInsecure ?? false,
    },
  });
  return { app, daemon, tokens };
}

/**
 * The second argument `app.request` passes on as Deno.serve's handler info: the request came in
 * on a TCP listener from 127.0.0.1 (so it needs a token, unless `tcpInsecure`).
 */
export const VIA_TCP = {
  remoteAddr: { transport: "tcp" as const, hostname: "127.0.0.1", port: 40_000 },
};

/** The same for the unix socket. */
export const VIA_UNIX = { remoteAddr: { transport: "unix" as const, path: "/run/volantd.sock" } };

/**
 * One HTTP/1.1 request written by hand over a unix socket or TCP (`fetch` always sends the URL's
 * Host; this sends any header): the status and the body text.
 */
export async function rawHttp(
  target: { path: string } | { hostname: string; port: number },
  head: string,
  headers: Record<string, string>,
  body = "",
): Promise<{ status: number; body: string }> {
  const conn = "path" in target
    ? await Deno.connect({ transport: "unix", path: target.path })
    : await Deno.connect({ hostname: target.hostname, port: target.port });
  try {
    const lines = [head, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    if (body !== "") lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`);
    lines.push("Connection: close", "", body);
    await conn.write(new TextEncoder().encode(lines.join("\r\n")));
    let text = "";
    const decoder = new TextDecoder();
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      // An upgrade that is refused still ends; one that is accepted stays open: stop at the head.
      if (/^HTTP\/1\.1 101 /.test(text) && text.includes("\r\n\r\n")) break;
    }
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
    const rest = text.slice(text.indexOf("\r\n\r\n") + 4);
    // Chunked answers: keep the chunks' data only.
    const chunked = /\r\ntransfer-encoding: chunked\r\n/i.test(
      text.slice(0, text.indexOf("\r\n\r\n") + 2),
    );
    return { status, body: chunked ? dechunk(rest) : rest };
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the peer.
    }
  }
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) return out;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
