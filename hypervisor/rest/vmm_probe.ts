/**
 * Probing a KVM-only VMM binary (Cloud Hypervisor, Firecracker): find it, read `--version`,
 * compare with the oldest supported release, and check hardware KVM, which neither can do
 * without. Shared by both REST drivers.
 *
 * @module
 */
import { detectKvm, type KvmStatus } from "../kvm.ts";
import { findExecutable } from "../process/mod.ts";

/** A release number. */
export interface VmmVersion {
  major: number;
  minor: number;
  patch: number;
}

/**
 * Parses a `--version` line such as `cloud-hypervisor v53.0` or `Firecracker v1.16.1`: the
 * first `[v]X.Y[.Z]` on a line naming `name` (case-insensitive).
 *
 * @example
 * ```ts
 * import { parseVmmVersion } from "./vmm_probe.ts";
 * const v = parseVmmVersion("cloud-hypervisor v53.0-246-gae44c2971\n", "cloud-hypervisor");
 * console.assert(v?.major === 53 && v.minor === 0 && v.patch === 0);
 * console.assert(parseVmmVersion("Firecracker v1.16.1\n", "cloud-hypervisor") === null);
 * ```
 */
export function parseVmmVersion(output: string, name: string): VmmVersion | null {
  const line = output.split("\n").find((l) => l.toLowerCase().includes(name.toLowerCase()));
  const m = line?.match(/\bv?(\d+)\.(\d+)(?:\.(\d+))?/);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/**
 * True when `v` is at least `min`.
 *
 * @example
 * ```ts
 * import { atLeast } from "./vmm_probe.ts";
 * console.assert(atLeast({ major: 1, minor: 16, patch: 1 }, { major: 1, minor: 16, patch: 0 }));
 * console.assert(!atLeast({ major: 52, minor: 9, patch: 0 }, { major: 53, minor: 0, patch: 0 }));
 * ```
 */
export function atLeast(v: VmmVersion, min: VmmVersion): boolean {
  if (v.major !== min.major) return v.major > min.major;
  if (v.minor !== min.minor) return v.minor > min.minor;
  return v.patch >= min.patch;
}

/** `major.minor.patch`. */
export function formatVersion(v: VmmVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** What a VMM binary probe found. */
export interface VmmProbe {
  available: boolean;
  /** The absolute path found (not resolved through symlinks). */
  binary?: string;
  /** `major.minor.patch`. */
  version?: string;
  /** Whether hardware KVM is usable. */
  kvm: boolean;
  /** Why it is unusable, and the fix. */
  reason?: string;
}

/** How to probe one VMM. */
export interface ProbeVmmOptions {
  /** Name in messages, e.g. `Cloud Hypervisor`. */
  label: string;
  /** The name `--version` prints, e.g. `cloud-hypervisor`. */
  versionName: string;
  /** The configured binary: a name on PATH or a path. */
  binary: string;
  /** The config key that sets the binary, named in the fix. */
  configKey: string;
  /** The oldest supported release. */
  min: VmmVersion;
  /** Why that release is the minimum (one clause). */
  minWhy: string;
  /** How to install it. */
  installFix: string;
  /** KVM detection result to use instead of checking `/dev/kvm`. */
  kvm?: KvmStatus;
  /** Limit for `--version`; default 10 000 ms. */
  timeoutMs?: number;
}

async function versionOutput(binary: string, timeoutMs: number): Promise<string> {
  const out = await new Deno.Command(binary, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`exited with code ${out.code}: ${text.trim().slice(0, 300)}`);
  return text;
}

/** Why KVM is unusable and how to fix it, without the TCG advice that only suits QEMU. */
function kvmWhy(kvm: KvmStatus): string {
  const reason = kvm.reason ?? `${kvm.path} is unusable`;
  return reason.replace(/, or set hypervisor\.accel: tcg[^;]*$/, "");
}

/**
 * Finds the binary, runs `--version`, checks the minimum release and hardware KVM. Never
 * throws: an unusable VMM comes back with `available: false` and the reason with the fix.
 *
 * @example
 * ```ts ignore
 * import { probeVmm } from "./vmm_probe.ts";
 * const probe = await probeVmm({
 *   label: "Firecracker", versionName: "firecracker", binary: "firecracker",
 *   configKey: "hypervisor.firecracker_binary", min: { major: 1, minor: 16, patch: 0 },
 *   minWhy: "its API document is the oldest checked", installFix: "install firecracker",
 * });
 * console.log(probe.available ? probe.version : probe.reason);
 * ```
 */
export async function probeVmm(options: ProbeVmmOptions): Promise<VmmProbe> {
  const { label, binary } = options;
  const kvm = options.kvm ?? await detectKvm();
  const path = await findExecutable(binary);
  if (path === null) {
    return {
      available: false,
      kvm: kvm.available,
      reason: `${label} binary ${binary} not found ${binary.includes("/") ? "" : "on PATH "}` +
        `(${options.installFix}, or set ${options.configKey})`,
    };
  }
  let version: VmmVersion | null;
  try {
    version = parseVmmVersion(
      await versionOutput(path, options.timeoutMs ?? 10_000),
      options.versionName,
    );
  } catch (err) {
    return {
      available: false,
      binary: path,
      kvm: kvm.available,
      reason: `${path} --version failed: ${(err as Error).message}`,
    };
  }
  if (!version) {
    return {
      available: false,
      binary: path,
      kvm: kvm.available,
      reason: `${path} --version did not print a ${label} version; is it ${options.versionName}?`,
    };
  }
  const v = formatVersion(version);
  if (!atLeast(version, options.min)) {
    return {
      available: false,
      binary: path,
      version: v,
      kvm: kvm.available,
      reason: `${label} ${v} is too old: this driver needs ${formatVersion(options.min)} or ` +
        `newer (${options.minWhy}); ${options.installFix}`,
    };
  }
  if (!kvm.available) {
    return {
      available: false,
      binary: path,
      version: v,
      kvm: false,
      reason: `${label} needs hardware KVM, which is unusable here: ${kvmWhy(kvm)} ` +
        "(for software emulation use hypervisor.name: qemu)",
    };
  }
  return { available: true, binary: path, version: v, kvm: true };
}
