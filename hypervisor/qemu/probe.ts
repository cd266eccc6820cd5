/**
 * Finding and checking the QEMU binary: lookup on PATH (or a configured path), `--version`
 * parsing, the minimum version, and whether the build has the `microvm` machine.
 *
 * @module
 */
import { findExecutable } from "../process/mod.ts";

/**
 * The oldest QEMU this driver supports: 5.2 brought ACPI to microvm (the power button the stop
 * ladder presses, and device discovery without `virtio_mmio.device=` kernel words).
 */
export const QEMU_MIN_VERSION = { major: 5, minor: 2, micro: 0 } as const;

/** The apt command that installs QEMU without GUI extras. */
export const QEMU_INSTALL_FIX = "apt-get install --no-install-recommends qemu-system-x86";

/** A parsed QEMU version. */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
  /** The whole first line of `--version`. */
  text: string;
}

/**
 * Parses the output of `qemu-system-x86_64 --version`.
 *
 * @example
 * ```ts
 * import { parseQemuVersion } from "./probe.ts";
 * const v = parseQemuVersion("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\nCopyright");
 * console.assert(v?.major === 7 && v.minor === 2 && v.micro === 22);
 * ```
 */
export function parseQemuVersion(output: string): QemuVersion | null {
  const line = output.split("\n").find((l) => /QEMU emulator version/i.test(l));
  const m = line?.match(/version\s+(\d+)\.(\d+)(?:\.(\d+))?/i);
  if (!line || !m) return null;
  return {
    major: Number(m[1]),
    minor: Number(m[2]),
    micro: Number(m[3] ?? 0),
    text: line.trim(),
  };
}

/**
 * True when `v` is at least {@linkcode QEMU_MIN_VERSION}.
 *
 * @example
 * ```ts
 * import { isSupportedVersion } from "./probe.ts";
 * console.assert(isSupportedVersion({ major: 7, minor: 2, micro: 0 }));
 * console.assert(!isSupportedVersion({ major: 5, minor: 1, micro: 9 }));
 * ```
 */
export function isSupportedVersion(v: { major: number; minor: number; micro: number }): boolean {
  const min = QEMU_MIN_VERSION;
  if (v.major !== min.major) return v.major > min.major;
  if (v.minor !== min.minor) return v.minor > min.minor;
  return v.micro >= min.micro;
}

/** What {@linkcode probeQemu} found. */
export interface QemuProbe {
  available: boolean;
  /** The absolute path found (not resolved through symlinks). */
  binary?: string;
  /** `major.minor.micro`. */
  version?: string;
  /** Why it is unusable, and the fix. */
  reason?: string;
}

async function run(binary: string, args: string[], timeoutMs: number): Promise<string> {
  const out = await new Deno.Command(binary, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`exited with code ${out.code}: ${text.trim().slice(0, 300)}`);
  return text;
}

/**
 * Finds `binary` (a name looked up on PATH, or a path), runs `--version` and `-machine help`,
 * and reports whether this driver can use it. Never throws.
 *
 * @example
 * ```ts ignore
 * import { probeQemu } from "./probe.ts";
 * const probe = await probeQemu("qemu-system-x86_64");
 * console.log(probe.available ? probe.version : probe.reason);
 * ```
 */
export async function probeQemu(
  binary: string,
  options: { timeoutMs?: number } = {},
): Promise<QemuProbe> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const path = await findExecutable(binary);
  if (path === null) {
    return {
      available: false,
      reason: `QEMU binary ${binary} not found ${binary.includes("/") ? "" : "on PATH "}` +
        `(install it: ${QEMU_INSTALL_FIX}, or set hypervisor.qemu_binary)`,
    };
  }
  let version: QemuVersion | null;
  try {
    version = parseQemuVersion(await run(path, ["--version"], timeoutMs));
  } catch (err) {
    return {
      available: false,
      binary: path,
      reason: `${path} --version failed: ${(err as Error).message}`,
    };
  }
  if (!version) {
    return {
      available: false,
      binary: path,
      reason: `${path} --version did not print a QEMU version; is it qemu-system-x86_64?`,
    };
  }
  const v = `${version.major}.${version.minor}.${version.micro}`;
  if (!isSupportedVersion(version)) {
    const min = QEMU_MIN_VERSION;
    return {
      available: false,
      binary: path,
      version: v,
      reason: `QEMU ${v} is too old: microvm needs ACPI, which QEMU ` +
        `${min.major}.${min.minor} added; upgrade QEMU (${QEMU_INSTALL_FIX})`,
    };
  }
  try {
    const machines = await run(path, ["-machine", "help"], timeoutMs);
    if (!/^microvm\s/m.test(machines)) {
      return {
        available: false,
        binary: path,
        version: v,
        reason: `${path} was built without the microvm machine type; install a build that ` +
          `has it (${QEMU_INSTALL_FIX})`,
      };
    }
  } catch (err) {
    return {
      available: false,
      binary: path,
      version: v,
      reason: `${path} -machine help failed: ${(err as Error).message}`,
    };
  }
  return { available: true, binary: path, version: v };
}
