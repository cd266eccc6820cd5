/**
 * The side effects of PID 1 behind one interface: the real one calls libc, the dry one only
 * says what it would do. The boot sequence takes a {@linkcode System}, so it runs unchanged on
 * the host (`kestrel --dry-run`) and in tests with a fake.
 *
 * @module
 */
import {
  LINUX_REBOOT_CMD_CAD_OFF,
  LINUX_REBOOT_CMD_POWER_OFF,
  mount,
  reboot,
  sethostname,
  sync,
} from "./libc.ts";
import { describeMount, type MountSpec } from "./mounts.ts";

/** Prefix of every human log line kestrel prints on the console. */
export const LOG_PREFIX = "kestrel: ";

/** What PID 1 does to the machine, and how it talks to the console. */
export interface System {
  /** True when nothing is changed (host dry run). */
  readonly dryRun: boolean;
  /** Reads a text file (`/proc/cmdline`…). */
  readText(path: string): Promise<string>;
  /** Whether a path exists (without following a final symlink). */
  exists(path: string): Promise<boolean>;
  /** Creates a directory and its parents. */
  mkdirp(path: string): Promise<void>;
  /** Creates a symlink `path → target`. */
  symlink(target: string, path: string): Promise<void>;
  /** Removes a file. */
  remove(path: string): Promise<void>;
  /** Mounts a filesystem; throws a `VolantError` naming the errno on failure. */
  mount(spec: MountSpec): void;
  /** Sets the kernel hostname. */
  sethostname(name: string): void;
  /** Makes Ctrl-Alt-Del send SIGINT to PID 1 (`reboot(CAD_OFF)`). */
  cadOff(): void;
  /** Flushes filesystem buffers. */
  sync(): void;
  /** Powers the machine off; does not return when it works. */
  powerOff(): void;
  /** Writes a human line, prefixed `kestrel: `. */
  log(message: string): void;
  /** Writes a raw line (the ready marker). */
  print(line: string): void;
}

const encoder = new TextEncoder();

function writeLine(target: { writeSync(p: Uint8Array): number }, line: string): void {
  const data = encoder.encode(`${line}\n`);
  try {
    let off = 0;
    while (off < data.length) off += target.writeSync(data.subarray(off));
  } catch {
    // A closed console must never take PID 1 down.
  }
}

/**
 * Writes `kestrel: <message>` to stderr (the serial console inside the guest).
 *
 * @example
 * ```ts
 * import { log } from "./system.ts";
 * log("hello from the host");
 * ```
 */
export function log(message: string): void {
  writeLine(Deno.stderr, `${LOG_PREFIX}${uptimeStamp()}${message}`);
}

/**
 * `[  12.345] ` from /proc/uptime, like the kernel's console stamps, when running as PID 1
 * (in a guest); "" elsewhere or where unreadable.
 */
function uptimeStamp(): string {
  if (Deno.pid !== 1) return "";
  try {
    const seconds = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
    return Number.isFinite(seconds) ? `[${seconds.toFixed(3).padStart(8)}] ` : "";
  } catch {
    return "";
  }
}

/**
 * Writes a raw line to stdout (the serial console inside the guest).
 *
 * @example
 * ```ts
 * import { print } from "./system.ts";
 * print("KESTREL_READY {}");
 * ```
 */
export function print(line: string): void {
  writeLine(Deno.stdout, line);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * The real machine: mounts, hostname and power through libc. Only for PID 1 in a guest.
 *
 * @example
 * ```ts ignore
 * import { realSystem } from "./system.ts";
 * if (Deno.pid === 1) realSystem().sync();
 * ```
 */
export function realSystem(): System {
  return {
    dryRun: false,
    readText: (path) => Deno.readTextFile(path),
    exists,
    mkdirp: (path) => Deno.mkdir(path, { recursive: true }),
    symlink: (target, path) => Deno.symlink(target, path),
    remove: (path) => Deno.remove(path),
    mount: (spec) => mount(spec.source, spec.target, spec.fstype, spec.flags, spec.data),
    sethostname: (name) => writeProcOr("/proc/sys/kernel/hostname", name, () => sethostname(name)),
    cadOff: () =>
      writeProcOr("/proc/sys/kernel/ctrl-alt-del", "0", () => reboot(LINUX_REBOOT_CMD_CAD_OFF)),
    sync,
    powerOff: () => reboot(LINUX_REBOOT_CMD_POWER_OFF),
    log,
    print,
  };
}

/**
 * Writes a /proc/sys setting, or calls `fallback` (the libc call doing the same) when procfs
 * refuses. Boot-time settings go through procfs: opening libc through FFI costs ~0.3 s of
 * guest boot under emulation, and is then only needed for power-off.
 */
function writeProcOr(path: string, value: string, fallback: () => void): void {
  try {
    Deno.writeTextFileSync(path, value);
  } catch {
    fallback();
  }
}

/**
 * A dry run on the host: reads the real files, changes nothing, and logs each change it
 * would make (`dry run: would mount devpts on /dev/pts …`).
 *
 * @example
 * ```ts
 * import { drySystem } from "./system.ts";
 * const lines: string[] = [];
 * const sys = drySystem({ log: (m) => lines.push(m) });
 * sys.sethostname("web");
 * console.assert(lines[0] === "dry run: would set the hostname to web");
 * ```
 */
export function drySystem(
  sinks: { log?: (message: string) => void; print?: (line: string) => void } = {},
): System {
  const say = sinks.log ?? log;
  const would = (what: string) => say(`dry run: would ${what}`);
  return {
    dryRun: true,
    readText: (path) => Deno.readTextFile(path),
    exists,
    mkdirp: (path) => Promise.resolve(would(`create directory ${path}`)),
    symlink: (target, path) => Promise.resolve(would(`link ${path} -> ${target}`)),
    remove: (path) => Promise.resolve(would(`remove ${path}`)),
    mount: (spec) => would(`mount ${describeMount(spec)}`),
    sethostname: (name) => would(`set the hostname to ${name}`),
    cadOff: () => would("make Ctrl-Alt-Del send SIGINT"),
    sync: () => would("sync"),
    powerOff: () => would("power off"),
    log: say,
    print: sinks.print ?? print,
  };
}
