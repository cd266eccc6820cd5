/**
 * The one {@linkcode VmSpec} check every driver (QEMU, Cloud Hypervisor, Firecracker) runs
 * before it starts a VMM, for what the VMM cannot be trusted to report clearly: ids, sizes,
 * kernel and disk formats, absolute paths, MACs, tap names and the API socket's path length.
 * Each driver passes its own limits ({@linkcode VmSpecRules}); the messages name the field as
 * `VmSpec.<field>` and, where the limit is the VMM's, the VMM.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { DiskSpec, KernelFormat, VmSpec } from "./driver.ts";

/** A driver's limits for {@linkcode checkVmSpec}. */
export interface VmSpecRules {
  /** Name in messages, e.g. `Cloud Hypervisor`. */
  label: string;
  /** Kernel formats the VMM boots. */
  kernelFormats: readonly KernelFormat[];
  /** What to do about a kernel format it cannot boot (in parentheses after the message). */
  kernelFormatFix?: string;
  /** Disk image formats the VMM takes; default any. */
  diskFormats?: readonly DiskSpec["format"][];
  /** Most vCPUs the VMM takes. */
  maxCpus: number;
  /** Longest disk or NIC id the VMM accepts; default no limit. */
  maxIdLength?: number;
  /** Characters the VM id may not contain besides whitespace (e.g. `,=` in QEMU options). */
  forbiddenIdChars?: string;
  /** Characters no path may contain (e.g. `,` where the VMM splits options on commas). */
  forbiddenPathChars?: string;
  /** The API socket the spec's runtime dir gives (its length is checked). */
  socket: string;
}

/** The fix for a kernel format a vmlinux-only VMM (Cloud Hypervisor, Firecracker) cannot boot. */
export const VMLINUX_ONLY_FIX = "use the vmlinux-generic kernel, or the qemu driver";

/** Unix socket paths are limited to 107 bytes plus the terminating NUL. */
const SUN_PATH_MAX = 107;
const ID = /^[a-z0-9_]+$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const TAP = /^[A-Za-z0-9_.-]{1,15}$/;
/** How messages name a forbidden character. */
const CHAR_NAMES: Readonly<Record<string, string>> = { ",": "commas" };

function invalid(field: string, message: string, value: unknown): VolantError {
  return new VolantError("invalid_argument", `VmSpec.${field}: ${message}`, { field, value });
}

/** `spaces`, `spaces, commas or '='`: the characters an id may not contain, in words. */
function withoutWords(chars: string): string {
  const words = ["spaces", ...[...chars].map((c) => CHAR_NAMES[c] ?? `'${c}'`)];
  const last = words.pop()!;
  return words.length === 0 ? last : `${words.join(", ")} or ${last}`;
}

/**
 * Checks `spec` against a driver's `rules`; throws `invalid_argument` naming the first bad
 * field (`VmSpec.cpus: …`).
 *
 * @example
 * ```ts
 * import { checkVmSpec } from "./spec_check.ts";
 * const spec = {
 *   id: "web", cpus: 64, memoryMib: 256,
 *   kernel: { path: "/k/vmlinux", format: "vmlinux" as const },
 *   cmdline: "console=ttyS0", disks: [], nics: [],
 *   serialLog: "/log/serial.log", vmmLog: "/log/vmm.log", runtimeDir: "/run/web",
 * };
 * const rules = {
 *   label: "Firecracker", kernelFormats: ["vmlinux" as const], maxCpus: 32,
 *   socket: "/run/web/fc.sock",
 * };
 * let message = "";
 * try {
 *   checkVmSpec(spec, rules);
 * } catch (err) {
 *   message = (err as Error).message;
 * }
 * console.assert(message === "VmSpec.cpus: Firecracker takes an integer from 1 to 32");
 * checkVmSpec({ ...spec, cpus: 2 }, rules);
 * ```
 */
export function checkVmSpec(spec: VmSpec, rules: VmSpecRules): void {
  const idChars = rules.forbiddenIdChars ?? "";
  if (spec.id === "" || /\s/.test(spec.id) || [...idChars].some((c) => spec.id.includes(c))) {
    throw invalid("id", `must be non-empty without ${withoutWords(idChars)}`, spec.id);
  }
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > rules.maxCpus) {
    throw invalid("cpus", `${rules.label} takes an integer from 1 to ${rules.maxCpus}`, spec.cpus);
  }
  if (!Number.isInteger(spec.memoryMib) || spec.memoryMib < 16) {
    throw invalid("memoryMib", "must be an integer of at least 16", spec.memoryMib);
  }
  if (!rules.kernelFormats.includes(spec.kernel.format)) {
    throw invalid(
      "kernel.format",
      `${rules.label} boots ${rules.kernelFormats.join(" or ")}, not ${spec.kernel.format}` +
        (rules.kernelFormatFix ? ` (${rules.kernelFormatFix})` : ""),
      spec.kernel.format,
    );
  }
  const paths: Array<[string, string | undefined]> = [
    ["kernel.path", spec.kernel.path],
    ["initramfs", spec.initramfs],
    ["serialLog", spec.serialLog],
    ["vmmLog", spec.vmmLog],
    ["runtimeDir", spec.runtimeDir],
    ...spec.disks.map((d, i): [string, string] => [`disks[${i}].path`, d.path]),
  ];
  for (const [field, path] of paths) {
    if (path === undefined) continue;
    if (!path.startsWith("/")) throw invalid(field, "must be an absolute path", path);
    const bad = [...(rules.forbiddenPathChars ?? "")].find((c) => path.includes(c));
    if (bad) throw invalid(field, `${rules.label} cannot take a path containing '${bad}'`, path);
  }
  const ids = new Set<string>();
  const idPattern = rules.maxIdLength === undefined
    ? "[a-z0-9_]+"
    : `[a-z0-9_]{1,${rules.maxIdLength}}`;
  const checkId = (field: string, id: string, kind: string) => {
    const tooLong = rules.maxIdLength !== undefined && id.length > rules.maxIdLength;
    if (!ID.test(id) || tooLong || ids.has(`${kind}-${id}`)) {
      throw invalid(field, `must be unique and match ${idPattern}`, id);
    }
    ids.add(`${kind}-${id}`);
  };
  for (const [i, disk] of spec.disks.entries()) {
    checkId(`disks[${i}].id`, disk.id, "disk");
    if (rules.diskFormats && !rules.diskFormats.includes(disk.format)) {
      throw invalid(
        `disks[${i}].format`,
        `${rules.label} takes ${rules.diskFormats.join(" or ")} images, not ${disk.format}`,
        disk.format,
      );
    }
  }
  for (const [i, nic] of spec.nics.entries()) {
    checkId(`nics[${i}].id`, nic.id, "net");
    if (!MAC.test(nic.mac)) {
      throw invalid(`nics[${i}].mac`, "must look like 52:54:00:12:34:56", nic.mac);
    }
    if (!TAP.test(nic.tap)) {
      throw invalid(`nics[${i}].tap`, "must be an interface name of 1-15 characters", nic.tap);
    }
  }
  if (new TextEncoder().encode(rules.socket).length > SUN_PATH_MAX) {
    throw invalid(
      "runtimeDir",
      `is too long for a unix socket: ${rules.socket} exceeds ${SUN_PATH_MAX} bytes`,
      spec.runtimeDir,
    );
  }
}
