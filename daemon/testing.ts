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
import { VmService } from "./services/mod.ts";
import type { VmServiceConfig } from "./services/mod.ts";
import { openStore, type Store } from "./store/mod.ts";
import type { Hono } from "hono";
import { createApp } from "./api/app.ts";
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
  close(): Promise<void>;
}

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
      const daemon: TestDaemon = {
        store,
        driver,
        service,
        plugins,
        async close() {
          if (closed) return;
          closed = true;
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
export function testApp(env: TestEnv): { app: Hono; daemon: TestDaemon } {
  const daemon = env.open();
  const app = createApp({
    service: daemon.service,
    plugins: daemon.plugins,
    version: VERSION,
    hypervisor: {
      name: daemon.driver.name,
      version: "fake-1.0",
      kvm: false,
      acceleration: { accel: "tcg", reason: "software emulation", probe: null },
    },
    logger: env.logger,
  });
  return { app, daemon };
}
