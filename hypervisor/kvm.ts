/**
 * Hardware acceleration: is KVM usable here, and which accelerator does a config choice mean.
 * KVM is usable when `/dev/kvm` opens read-write and answers `KVM_GET_API_VERSION` with 12 (the
 * ioctl goes through libc over FFI; without FFI permission the open alone decides).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";

/** The stable KVM API version every Linux since 2.6.22 reports. */
export const KVM_API_VERSION = 12;

/** `_IO(KVMIO=0xAE, 0x00)`. */
const KVM_GET_API_VERSION = 0xae00n;
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

/** What {@linkcode detectKvm} found. */
export interface KvmStatus {
  /** True when hardware KVM can be used. */
  available: boolean;
  /** The device checked. */
  path: string;
  /** `KVM_GET_API_VERSION`'s answer, when it could be asked. */
  apiVersion?: number;
  /** Why it is unavailable, and the fix. */
  reason?: string;
  /** The KVM modules loaded (`kvm_intel`, `kvm_amd`, `kvm_pvm`), when known. */
  modules?: string[];
  /** This host is itself a VM (`hypervisor` in the CPU flags): KVM here is nested. */
  nested?: boolean;
}

/** KVM modules whose presence says what kind of KVM this is. */
const KVM_MODULES = ["kvm_intel", "kvm_amd", "kvm_pvm"] as const;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function hostKind(): Promise<{ modules: string[]; nested: boolean }> {
  const modules: string[] = [];
  for (const m of KVM_MODULES) if (await exists(`/sys/module/${m}`)) modules.push(m);
  let nested = false;
  try {
    nested = /^flags\s*:.*\bhypervisor\b/m.test(await Deno.readTextFile("/proc/cpuinfo"));
  } catch {
    // No /proc: unknown.
  }
  return { modules, nested };
}

/**
 * What probably keeps a guest from booting on a KVM device that opens and answers (for the
 * message when a probe boot fails); "" when nothing is known.
 *
 * @example
 * ```ts
 * import { kvmSuspect } from "./kvm.ts";
 * const pvm = { available: true, path: "/dev/kvm", modules: ["kvm_pvm"], nested: true };
 * console.assert(kvmSuspect(pvm).startsWith("nested PVM"));
 * ```
 */
export function kvmSuspect(kvm: KvmStatus): string {
  if (kvm.modules?.includes("kvm_pvm")) {
    return "nested PVM: the kvm_pvm module is loaded, and a stock guest kernel hangs under it";
  }
  if (kvm.nested) return "nested virtualization: this host is itself a VM";
  return "";
}

/**
 * The facts a KVM verdict depends on besides the VMM and the guest kernel: the host kernel and
 * which KVM device and modules it has. A change in any of them makes a cached verdict stale.
 *
 * @example
 * ```ts
 * import { hostAccelFingerprint } from "./kvm.ts";
 * const f = await hostAccelFingerprint();
 * console.assert(typeof f.host_kernel === "string");
 * ```
 */
export async function hostAccelFingerprint(path = "/dev/kvm"): Promise<{
  host_kernel: string;
  kvm_device: string | null;
  kvm_modules: string[];
}> {
  const read = (p: string) => Deno.readTextFile(p).then((t) => t.trim(), () => "");
  const release = await read("/proc/sys/kernel/osrelease");
  const version = await read("/proc/sys/kernel/version");
  let device: string | null = null;
  try {
    const st = await Deno.stat(path);
    const rdev = st.rdev ?? 0;
    device = `${(rdev >> 8) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
  } catch {
    device = null;
  }
  return {
    host_kernel: `${release} ${version}`.trim(),
    kvm_device: device,
    kvm_modules: (await hostKind()).modules,
  };
}

/** Options of {@linkcode detectKvm}. */
export interface DetectKvmOptions {
  /** The device to check; default `/dev/kvm`. */
  path?: string;
}

const FIX = "load the module (modprobe kvm_intel or kvm_amd), enable virtualization " +
  "(VT-x/AMD-V, or nested virtualization for a VM host) and give volantd read-write access " +
  "to /dev/kvm, or set hypervisor.accel: tcg to run guests in software emulation";

function unavailable(path: string, why: string): KvmStatus {
  return { available: false, path, reason: `${why}; ${FIX}` };
}

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Asks the device for its API version over FFI; `undefined` when FFI is not permitted. */
function apiVersionOf(path: string): { version?: number; errno?: number } | undefined {
  let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch {
    return undefined;
  }
  try {
    const errno = () => {
      const p = lib.symbols.__errno_location();
      return p ? new Deno.UnsafePointerView(p).getInt32() : -1;
    };
    const fd = lib.symbols.open(cString(path), O_RDWR | O_CLOEXEC);
    if (fd < 0) return { errno: errno() };
    try {
      const version = lib.symbols.ioctl(fd, KVM_GET_API_VERSION, 0n);
      return version < 0 ? { errno: errno() } : { version };
    } finally {
      lib.symbols.close(fd);
    }
  } finally {
    lib.close();
  }
}

/**
 * Checks whether hardware KVM is usable. Never throws.
 *
 * @example
 * ```ts
 * import { detectKvm } from "./kvm.ts";
 * const kvm = await detectKvm();
 * console.log(kvm.available ? "KVM" : `TCG: ${kvm.reason}`);
 * ```
 */
export async function detectKvm(options: DetectKvmOptions = {}): Promise<KvmStatus> {
  const path = options.path ?? "/dev/kvm";
  return { ...await checkDevice(path), ...await hostKind() };
}

async function checkDevice(path: string): Promise<KvmStatus> {
  try {
    const file = await Deno.open(path, { read: true, write: true });
    file.close();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return unavailable(
        path,
        `${path} does not exist (no KVM module loaded, or no hardware support)`,
      );
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      return unavailable(path, `${path} cannot be opened read-write: permission denied`);
    }
    return unavailable(path, `${path} cannot be opened: ${(err as Error).message}`);
  }
  const answer = apiVersionOf(path);
  if (answer === undefined) return { available: true, path };
  if (answer.version === undefined) {
    return unavailable(
      path,
      `${path} is not a KVM device (KVM_GET_API_VERSION failed, errno ${answer.errno})`,
    );
  }
  if (answer.version !== KVM_API_VERSION) {
    return unavailable(
      path,
      `${path} reports KVM API version ${answer.version}, expected ${KVM_API_VERSION}`,
    );
  }
  return { available: true, path, apiVersion: answer.version };
}

/** The accelerator a VMM runs with. */
export type Accel = "kvm" | "tcg";

/**
 * Resolves the config's `hypervisor.accel` (`auto`, `kvm` or `tcg`) against what the host has.
 * `auto` takes KVM when usable, TCG otherwise; `kvm` without KVM is a `hypervisor_unavailable`
 * error naming the reason and the fix.
 *
 * @example
 * ```ts
 * import { resolveAccel } from "./kvm.ts";
 * const none = { available: false, path: "/dev/kvm", reason: "missing" };
 * console.assert(resolveAccel("auto", none) === "tcg");
 * console.assert(resolveAccel("tcg", { available: true, path: "/dev/kvm" }) === "tcg");
 * ```
 */
export function resolveAccel(choice: "auto" | "kvm" | "tcg", kvm: KvmStatus): Accel {
  if (choice === "tcg") return "tcg";
  if (kvm.available) return "kvm";
  if (choice === "auto") return "tcg";
  throw new VolantError(
    "hypervisor_unavailable",
    `hypervisor.accel is kvm but KVM is unavailable: ${kvm.reason ?? "unknown reason"}`,
    { accel: choice, device: kvm.path },
  );
}
