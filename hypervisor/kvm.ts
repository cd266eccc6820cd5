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
