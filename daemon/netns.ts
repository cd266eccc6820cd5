/**
 * Running volantd inside a network namespace (`network.namespace` / `VOLANT_NETNS`): when
 * the process is not inside it yet, the namespace is created if missing and volantd replaces
 * itself (`execve`, same PID, so systemd and pid files keep tracking it) with
 * `ip netns exec <ns> <its own command line>`. Where `execve` is not possible it re-runs itself
 * as a child instead, forwarding SIGTERM/SIGINT and exiting with the child's code. The unix
 * socket lives on the shared filesystem, so `volar` in the root namespace reaches it.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Logger } from "./log.ts";

/** Environment marker set on the re-run child: the namespace it was started in. */
export const NETNS_MARKER = "VOLANT_NETNS_ENTERED";

/** Where `ip netns` keeps named namespaces. */
export const NETNS_DIR = "/run/netns";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Throws `invalid_argument` unless `name` is a usable namespace name. */
export function assertNamespaceName(name: string): void {
  if (!NAME.test(name)) {
    throw new VolantError(
      "invalid_argument",
      `network.namespace: ${JSON.stringify(name)} is not a valid namespace name ` +
        "(letters, digits, '.', '_', '-'; at most 64)",
    );
  }
}

async function inode(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).ino;
  } catch {
    return null;
  }
}

/** Whether this process runs in network namespace `name` (same inode as `/run/netns/<name>`). */
export async function isInNamespace(name: string): Promise<boolean> {
  const target = await inode(`${NETNS_DIR}/${name}`);
  return target !== null && target === await inode("/proc/self/ns/net");
}

async function ip(args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  } catch (err) {
    throw new VolantError(
      "network_error",
      `Cannot run ip ${args.join(" ")}: ${(err as Error).message} (install iproute2)`,
    );
  }
  if (!out.success) {
    throw new VolantError(
      "network_error",
      `ip ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/** Creates namespace `name` (with `lo` up) unless it exists; returns whether it created it. */
export async function ensureNamespace(name: string): Promise<boolean> {
  assertNamespaceName(name);
  if (await inode(`${NETNS_DIR}/${name}`) !== null) return false;
  await ip(["netns", "add", name]);
  await ip(["-n", name, "link", "set", "lo", "up"]);
  return true;
}

/** This process's own command line, with the runtime's absolute path first. */
export async function ownArgv(): Promise<string[]> {
  const raw = await Deno.readTextFile("/proc/self/cmdline");
  const argv = raw.split("\0");
  if (argv.at(-1) === "") argv.pop();
  return [Deno.execPath(), ...argv.slice(1)];
}

/** Absolute path of `cmd` on `PATH` (or common sbin dirs), or `undefined`. */
export function findOnPath(cmd: string, path = Deno.env.get("PATH") ?? ""): string | undefined {
  const dirs = [...path.split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const dir of dirs.filter((d) => d !== "")) {
    try {
      const info = Deno.statSync(`${dir}/${cmd}`);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return `${dir}/${cmd}`;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text + "\0");
}

/** A NULL-terminated array of pointers to C strings (the strings must outlive the call). */
function cStringArray(items: Uint8Array<ArrayBuffer>[]): BigUint64Array<ArrayBuffer> {
  const out = new BigUint64Array(items.length + 1);
  items.forEach((item, i) =>
    out[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(item)))
  );
  return out;
}

/**
 * Replaces this process with `ip netns exec <name> ...argv` (the marker added to the
 * environment). Returns only when `execve` failed, with its errno.
 */
export function execInNamespace(name: string, argv: string[]): number {
  const ip = findOnPath("ip");
  if (!ip) return 2; // ENOENT
  const libc = Deno.dlopen("libc.so.6", {
    execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  });
  try {
    const args = ["ip", "netns", "exec", name, ...argv].map(cString);
    const env = Object.entries({ ...Deno.env.toObject(), [NETNS_MARKER]: name })
      .map(([k, v]) => cString(`${k}=${v}`));
    libc.symbols.execve(cString(ip), cStringArray(args), cStringArray(env));
    const errno = libc.symbols.__errno_location();
    return errno === null ? -1 : new Deno.UnsafePointerView(errno).getInt32();
  } finally {
    libc.close();
  }
}

/**
 * Runs `argv` in namespace `name` with the marker set, forwarding SIGTERM and SIGINT;
 * resolves to its exit code (128 + signal number when it was killed).
 */
export async function runInNamespace(name: string, argv: string[]): Promise<number> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", name, ...argv],
    env: { [NETNS_MARKER]: name },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const forwards = signals.map((signal) => {
    const forward = () => {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
    };
    Deno.addSignalListener(signal, forward);
    return [signal, forward] as const;
  });
  try {
    const status = await child.status;
    return status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const [signal, forward] of forwards) Deno.removeSignalListener(signal, forward);
  }
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 1;
}

/**
 * Makes sure volantd runs in namespace `name`: `null` when this process already does (carry
 * on), otherwise the exit code of the re-run child (return it).
 *
 * @example
 * ```ts ignore
 * import { enterNamespace } from "./netns.ts";
 * const code = await enterNamespace("volant", (k) => Deno.env.get(k), logger);
 * if (code !== null) Deno.exit(code);
 * ```
 */
export async function enterNamespace(
  name: string,
  env: (key: string) => string | undefined,
  logger: Logger,
): Promise<number | null> {
  assertNamespaceName(name);
  if (await isInNamespace(name)) return null;
  if (env(NETNS_MARKER) === name) {
    throw new VolantError(
      "network_error",
      `volantd was re-run under ip netns exec ${name} but is not inside that namespace`,
    );
  }
  if (await ensureNamespace(name)) logger.info("network namespace created", { netns: name });
  const argv = await ownArgv();
  logger.info("re-running inside the network namespace", { netns: name, pid: Deno.pid });
  const errno = execInNamespace(name, argv);
  logger.warn("execve failed; running as a child instead", { netns: name, errno });
  return await runInNamespace(name, argv);
}
