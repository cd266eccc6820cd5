/**
 * Test fixtures for the CLI: an {@linkcode Io} that captures output, and a real volantd
 * (daemon/main.ts) serving on a real unix socket in a temp dir, with the fake hypervisor
 * driver so no VM boots. Not part of the public API.
 *
 * @module
 */
import { type FakeBehavior, FakeDriver, FakeRegistry } from "../hypervisor/fake/mod.ts";
import type { VmSpec } from "../hypervisor/driver.ts";
import { createLogger } from "../daemon/log.ts";
import { main as volantd } from "../daemon/main.ts";
import { fakeGuestAgent, FakeHostNetwork } from "../daemon/network/mod.ts";
import { CreateToken } from "../schema/operations/mod.ts";
import { VolantClient } from "./client.ts";
import type { Io } from "./io.ts";
import { main } from "./main.ts";

/** An {@linkcode Io} whose output is kept in strings. */
export interface CapturedIo extends Io {
  /** Everything written to stdout. */
  stdout(): string;
  /** Everything written to stderr. */
  stderr(): string;
}

/** Options of {@linkcode captureIo}. */
export interface CaptureOptions {
  outIsTerminal?: boolean;
  errIsTerminal?: boolean;
  env?: Record<string, string>;
  /** What the command reads on stdin (not a terminal). */
  stdin?: string;
}

/** A captured Io: not a terminal, an empty environment, the real clock. */
export function captureIo(options: CaptureOptions = {}): CapturedIo {
  let out = "";
  let err = "";
  const env = options.env ?? {};
  return {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    outIsTerminal: options.outIsTerminal ?? false,
    errIsTerminal: options.errIsTerminal ?? false,
    env: (key) => env[key],
    now: () => Date.now(),
    ...(options.stdin === undefined ? {} : {
      stdin: { readable: new Response(options.stdin).body!, isTerminal: false },
    }),
    stdout: () => out,
    stderr: () => err,
  };
}

/** What one volar run produced. */
export interface VolarResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs volar in-process with a captured Io. */
export async function volar(args: string[], options: CaptureOptions = {}): Promise<VolarResult> {
  const io = captureIo(options);
  const code = await main(args, io);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

/**
 * How the fake guests behave, by VM name: `slow-*` never get ready within a test, `crash-*`
 * die after 100 ms, `app-*` (deployment `app`'s replicas) run a healthy workload, the rest are
 * ready after 300 ms (long enough that waiting is real).
 */
export function behaviorByName(spec: VmSpec): Partial<FakeBehavior> {
  if (spec.id.startsWith("slow-")) return { readyDelayMs: 60_000 };
  // Replicas of deployment `app`: a plugin workload that is healthy.
  if (spec.id.startsWith("app-")) return { readyDelayMs: 50, workload: HEALTHY_WORKLOAD };
  if (spec.id.startsWith("crash-")) return { readyDelayMs: 5_000, crashAfterMs: 100 };
  return { readyDelayMs: 300 };
}

/** A workload as a fake kestrel reports it: running and healthy. */
export const HEALTHY_WORKLOAD: Record<string, unknown> = {
  name: "web",
  version: "1.0.0",
  state: "running",
  healthy: true,
  health: { status: "healthy", last_error: null },
  pid: 42,
  restarts: 0,
  last_exit: null,
  started_at: "2026-01-01T00:00:00.000Z",
  since: "2026-01-01T00:00:00.000Z",
  next_start_at: null,
  last_error: null,
};

/** A volantd running in this process. */
export interface TestDaemon {
  /** Its temp dir (state, runtime, logs, guest). */
  dir: string;
  /** Its unix socket. */
  socket: string;
  /** `http://127.0.0.1:<port>` when started with `tcp`. */
  api: string | null;
  /** An admin bearer token for `api` (created over the unix socket), when started with `tcp`. */
  token: string | null;
  /** The fake process table. */
  registry: FakeRegistry;
  /** Its log lines. */
  logs: string[];
  /** Stops it, ends the fake VMMs and removes the temp dir. */
  stop(): Promise<void>;
  /**
   * Stops it (its fake VMMs keep running) and starts it again over the same state and socket;
   * resolves once it listens again.
   */
  restart(): Promise<void>;
}

/** Options of {@linkcode startDaemon}. */
export interface StartDaemonOptions {
  /** Also listen on 127.0.0.1 (a random port); an admin token is created for it. */
  tcp?: boolean;
  /** `api.tcp_insecure: true` (no token needed on TCP). */
  tcpInsecure?: boolean;
  /** More lines under `api:` (indented by two spaces already). */
  api?: string[];
  /** More top-level config lines. */
  config?: string[];
}

/** Starts volantd (`daemon/main.ts`) with the fake driver and a temp config. */
export async function startDaemon(options: StartDaemonOptions = {}): Promise<TestDaemon> {
  const dir = await Deno.makeTempDir({ prefix: "volar-test-" });
  await Deno.mkdir(`${dir}/guest`);
  for (const f of ["bzImage-volant", "initramfs.cpio", "runtime.erofs"]) {
    await Deno.writeTextFile(`${dir}/guest/${f}`, "dummy\n");
  }
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    [
      `state_dir: ${dir}/state`,
      `runtime_dir: ${dir}/run`,
      `log_dir: ${dir}/log`,
      `guest:`,
      `  dir: ${dir}/guest`,
      `api:`,
      `  socket_mode: 0o600`,
      `  tcp: ${options.tcp ? "127.0.0.1:0" : "null"}`,
      ...(options.tcpInsecure ? ["  tcp_insecure: true"] : []),
      ...(options.api ?? []),
      ...(options.config ?? []),
      `timeouts:`,
      `  stop_graceful_ms: 200`,
      `  stop_term_ms: 100`,
    ].join("\n"),
  );
  const registry = new FakeRegistry();
  const logs: string[] = [];
  let abort = new AbortController();
  let code: Promise<number> = Promise.resolve(0);
  /** Runs volantd over the config; resolves once it listens. */
  const launch = () => {
    abort = new AbortController();
    const listening = Promise.withResolvers<{ socket: string; api: string | null }>();
    const running = volantd(["--config", config], {
      driverFactory: () => Promise.resolve(new FakeDriver({ registry, behavior: behaviorByName })),
      // Never the real host network: these tests run in the machine's own namespace.
      networkFactory: () => new FakeHostNetwork({ agent: fakeGuestAgent(registry) }),
      env: () => undefined,
      signal: abort.signal,
      logger: createLogger({ sink: (line) => logs.push(line) }),
      onListening: (info) =>
        listening.resolve({
          socket: info.socket,
          api: info.tcp ? `http://${info.tcp.hostname}:${info.tcp.port}` : null,
        }),
    });
    code = running;
    return Promise.race([
      listening.promise,
      running.then((c): never => {
        throw new Error(`volantd exited with ${c} before listening:\n${logs.join("\n")}`);
      }),
    ]);
  };
  let started: { socket: string; api: string | null };
  try {
    started = await launch();
  } catch (err) {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  let token: string | null = null;
  if (started.api !== null && !options.tcpInsecure) {
    const client = new VolantClient({ kind: "unix", socket: started.socket });
    try {
      token = (await client.call(CreateToken, {}, { name: "test-admin", scope: "admin" })).token;
    } finally {
      client.close();
    }
  }
  return {
    dir,
    socket: started.socket,
    api: started.api,
    token,
    registry,
    logs,
    async stop() {
      abort.abort();
      await code;
      registry.dispose();
      await Deno.remove(dir, { recursive: true });
    },
    async restart() {
      abort.abort();
      await code;
      await launch();
    },
  };
}
