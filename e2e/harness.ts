/**
 * End-to-end fixtures: a real volantd process (from source) inside a network namespace the test
 * creates, real QEMU under it, the real guest (kernel, stage-0 initramfs, runtime image with
 * kestrel), and `volar` run as a real subprocess. Everything a fixture starts is ended by PID
 * and every namespace and temp dir it made is removed in `dispose()`.
 *
 * @module
 */
import { unixFetch } from "../daemon/testing.ts";
import { TEST_BOOT_VERDICTS } from "../daemon/boot_probe/testing.ts";
import { fetchDebianKernel } from "../kernels/debian_kernel.ts";
import {
  cgroupParentDirs,
  detectCgroupHost,
  listVmmCgroups,
  removeVmmCgroup,
} from "../hypervisor/jail/mod.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${REPO}/main.ts`;
const KESTREL_MAIN = `${REPO}/agent/main.ts`;

/** The output of one `volar` run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A volantd process serving on a unix socket in a temp dir. */
export interface E2eDaemon {
  /** Temp dir holding config, state, runtime and log dirs. */
  readonly dir: string;
  /** The daemon's unix socket. */
  readonly socket: string;
  /** The network namespace it runs in. */
  readonly ns: string;
  /** The config file. */
  readonly config: string;
  /** Its `security.cgroup_parent` (VMM cgroups of this daemon only; removed by `dispose()`). */
  readonly cgroupParent: string;
  /** Runs `volar --socket <socket> ...args`. */
  volar(...args: string[]): Promise<CliResult>;
  /** A request to the daemon's API; the body parsed as JSON (null when empty). */
  api(path: string, init?: RequestInit): Promise<{ status: number; body: unknown }>;
  /**
   * Stops the daemon (SIGTERM; SIGKILL by PID when it is still running after the grace period)
   * and resolves to its exit code (128 + 9 when it had to be killed); VMs keep running.
   */
  stop(): Promise<number>;
  /** Starts the daemon again on the same state (after `stop`), with `env` added to its own. */
  start(env?: Record<string, string>): Promise<void>;
  /** The daemon's log lines so far (JSON lines from stderr). */
  logs(): string[];
  /** The daemon's PID while it runs (it enters its namespace in place, keeping the PID). */
  pid(): number | undefined;
  /** Stops the daemon, kills leftover VMMs of this dir by PID, removes the namespace and dir. */
  dispose(): Promise<void>;
}

/** Options of {@linkcode startDaemon}. */
export interface StartDaemonOptions {
  /** Extra YAML lines appended to the config. */
  config?: string[];
  /**
   * Extra YAML lines of the config's `security` section (e.g. `jail: off`); the harness sets
   * `cgroup_parent` to a cgroup of this daemon's own, removed by `dispose()`.
   */
  security?: string[];
  /** Extra environment for the daemon. */
  env?: Record<string, string>;
  /** Guest dir instead of the built test guest. */
  guestDir?: string;
  /** How long `stop()` waits after SIGTERM before SIGKILL, ms. @default {5000} */
  stopGraceMs?: number;
  /**
   * The program and arguments to run instead of volantd (`--config <file>` is appended); it
   * must answer `GET /healthz` on `<runtime_dir>/volantd.sock`. For the harness's own tests.
   */
  command?: string[];
}

/** How long `stop()` waits after SIGTERM before it kills the daemon, by default. */
export const STOP_GRACE_MS = 5_000;

/** How long `stop()` waits for the daemon's stderr to end after it exited. */
const LOG_DRAIN_MS = 2_000;

function delay<T>(ms: number, value: T): { promise: Promise<T>; cancel(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<T>((resolve) => id = setTimeout(() => resolve(value), ms));
  return { promise, cancel: () => clearTimeout(id) };
}

/**
 * Ends `child`: SIGTERM, then SIGKILL (by its PID) when it has not exited within `graceMs`.
 * Resolves to its status and whether it had to be killed.
 */
export async function terminate(
  child: Deno.ChildProcess,
  graceMs: number,
): Promise<{ status: Deno.CommandStatus; killed: boolean }> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const grace = delay(graceMs, null);
  const exited = await Promise.race([child.status, grace.promise]);
  grace.cancel();
  if (exited !== null) return { status: exited, killed: false };
  try {
    Deno.kill(child.pid, "SIGKILL");
  } catch {
    // Exited meanwhile.
  }
  return { status: await child.status, killed: true };
}

/**
 * The guest dir the VM tests boot from: with Volant's own kernel (the default),
 * `$VOLANT_TEST_GUEST_DIR` (set by `./volant test`, which builds it), else `<repo>/.cache/guest`
 * built here on first use (bundle + guest builder); with `"debian"`, `<repo>/.cache/guest-debian`
 * (Debian's cloud kernel, the fallback path), built here on first use.
 */
export async function testGuestDir(kernel: "volant" | "debian" = "volant"): Promise<string> {
  const fromEnv = Deno.env.get("VOLANT_TEST_GUEST_DIR");
  if (fromEnv && kernel === "volant") return fromEnv;
  const dir = kernel === "volant" ? `${REPO}/.cache/guest` : `${REPO}/.cache/guest-debian`;
  await fetchDebianKernel(dir);
  // kestrel alone, as `./volant` builds it for users: the guest runs exactly what they run (the
  // whole three-program bundle would cost the guest ~60 MiB more).
  await mustRun(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform=deno",
    "-o",
    "dist/kestrel.js",
    KESTREL_MAIN,
  ]);
  await mustRun(Deno.execPath(), [
    "run",
    "-A",
    "tools/build_guest.ts",
    "--kernel",
    kernel,
    dir,
    `${REPO}/dist/kestrel.js`,
  ]);
  return dir;
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<CliResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: REPO,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function mustRun(cmd: string, args: string[]): Promise<CliResult> {
  const result = await run(cmd, args);
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${result.stderr}`);
  return result;
}

/** Runs `volar <args>` against `daemon`; fails the test (with volar's stderr) unless it exits 0. */
export async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  if (r.code !== 0) {
    throw new Error(`volar ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  }
  return r.stdout;
}

/** Runs `ip <args>`; throws with its stderr on failure. */
export async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** PIDs of live processes whose command line mentions `needle` (e.g. a test's temp dir). */
export async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (cmdline.includes(needle) && state !== "Z") pids.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Whether process `pid` is alive (and not a zombie). */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Files and dirs under `dir`, relative, sorted ("" when it does not exist). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(path: string, rel: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(path));
    } catch {
      return;
    }
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      out.push(child);
      if (entry.isDirectory) await walk(`${path}/${entry.name}`, child);
    }
  }
  await walk(dir, "");
  return out.sort();
}

/**
 * Starts volantd from source in a fresh network namespace with dirs in a temp dir, booting the
 * real guest with the real QEMU driver.
 *
 * @example
 * ```ts ignore
 * const daemon = await startDaemon();
 * try {
 *   const r = await daemon.volar("vms", "list", "--json");
 * } finally {
 *   await daemon.dispose();
 * }
 * ```
 */
export async function startDaemon(options: StartDaemonOptions = {}): Promise<E2eDaemon> {
  const guest = options.guestDir ?? await testGuestDir();
  const dir = await Deno.makeTempDir({ prefix: "volant-e2e-" });
  const ns = `volant-e2e-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", ns);
  await ip("-n", ns, "link", "set", "lo", "up");
  const socket = `${dir}/run/volantd.sock`;
  const config = `${dir}/config.yaml`;
  // VMM cgroups of this daemon only, under a parent of its own (see `dispose`).
  const cgroupParent = `volant-e2e-${ns.slice("volant-e2e-".length)}`;
  await Deno.writeTextFile(
    config,
    [
      `state_dir: ${dir}/state`,
      `runtime_dir: ${dir}/run`,
      `log_dir: ${dir}/log`,
      `guest:`,
      `  dir: ${guest}`,
      `network:`,
      `  namespace: ${ns}`,
      `timeouts:`,
      `  ready_ms: 120000`,
      `security:`,
      `  cgroup_parent: ${cgroupParent}`,
      ...(options.security ?? []).map((line) => `  ${line}`),
      ...(options.config ?? []),
    ].join("\n") + "\n",
  );
  const logs: string[] = [];
  let child: Deno.ChildProcess | undefined;
  let pump: Promise<void> | undefined;

  async function start(env?: Record<string, string>): Promise<void> {
    const [program, ...args] = options.command ?? [Deno.execPath(), "run", "-A", MAIN, "volantd"];
    child = new Deno.Command(program!, {
      args: [...args, "--config", config],
      cwd: REPO,
      // The daemons of a test run share one KVM verdict: at most one probe boot per run.
      env: { VOLANT_BOOT_VERDICTS: TEST_BOOT_VERDICTS, ...options.env, ...env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr;
    pump = (async () => {
      let buffer = "";
      for await (const chunk of stderr.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        const parts = buffer.split("\n");
        buffer = parts.pop()!;
        logs.push(...parts);
      }
      if (buffer) logs.push(buffer);
    })();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        if ((await unixFetch(socket, "/healthz")).status === 200) return;
      } catch {
        // Not listening yet.
      }
      const exited = await Promise.race([
        child.status.then((s) => s),
        new Promise<null>((r) => setTimeout(() => r(null), 100)),
      ]);
      if (exited) {
        await pump;
        throw new Error(`volantd exited with ${exited.code}:\n${logs.join("\n")}`);
      }
    }
    throw new Error(`volantd did not answer on ${socket} within 60 s:\n${logs.join("\n")}`);
  }

  async function stop(): Promise<number> {
    if (!child) return 0;
    const current = child;
    child = undefined;
    const graceMs = options.stopGraceMs ?? STOP_GRACE_MS;
    const { status, killed } = await terminate(current, graceMs);
    if (killed) {
      logs.push(
        `e2e harness: volantd (pid ${current.pid}) was still running ${graceMs} ms after ` +
          "SIGTERM; killed it with SIGKILL",
      );
    }
    // Its stderr ends with it, unless something it started still holds it open.
    const drain = delay(LOG_DRAIN_MS, undefined);
    await Promise.race([pump, drain.promise]);
    drain.cancel();
    return status.code;
  }

  try {
    await start();
  } catch (err) {
    await stop().catch(() => {});
    await ip("netns", "del", ns).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }

  return {
    dir,
    socket,
    ns,
    config,
    cgroupParent,
    volar: (...args) =>
      run(Deno.execPath(), ["run", "-A", MAIN, "volar", "--socket", socket, ...args], {
        NO_COLOR: "1",
      }),
    api: (path, init) => unixFetch(socket, path, init),
    stop,
    start,
    logs: () => [...logs],
    pid: () => child?.pid,
    async dispose() {
      await stop().catch(() => {});
      for (const pid of await processesMentioning(dir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Gone.
        }
      }
      await removeCgroupParent(cgroupParent);
      await ip("netns", "del", ns).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Removes a test daemon's VMM cgroup parent (relative to this process's cgroups, as the
 * daemon it started resolves it): whatever still runs in a VMM cgroup below it was started by
 * that daemon and is killed.
 */
async function removeCgroupParent(name: string): Promise<void> {
  const host = await detectCgroupHost("auto").catch(() => null);
  if (host === null) return;
  const parent = cgroupParentDirs(host, name);
  for (const vm of await listVmmCgroups(parent).catch(() => [])) {
    const dirs = {
      memory: `${parent.memory}/${vm}`,
      cpu: `${parent.cpu}/${vm}`,
      pids: `${parent.pids}/${vm}`,
    };
    await removeVmmCgroup({
      version: host.version,
      dirs,
      limits: { memoryMaxBytes: 0, cpuQuotaUs: 0, cpuPeriodUs: 0, pidsMax: 0 },
    }).catch(() => {});
  }
  for (const d of new Set(Object.values(parent))) await Deno.remove(d).catch(() => {});
}
