/**
 * What the two REST-API drivers (Cloud Hypervisor, Firecracker) share: checking a
 * {@linkcode VmSpec} against a VMM's limits, claiming a runtime dir (refusing one whose socket
 * still answers, removing stale files), and launching a VMM detached until its API answers,
 * with nothing left behind when it does not.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import type { KernelFormat, VmmHandle, VmSpec } from "../driver.ts";
import { type DetachedProcess, killAndWait, logTail, spawnDetached } from "../process/mod.ts";
import { removeIfPresent } from "../spec_files.ts";
import type { VmmJailFiles } from "../jail/prepare.ts";

export { checkSpecFiles, removeIfPresent } from "../spec_files.ts";

/** A VMM's limits for {@linkcode checkRestSpec}. */
export interface RestSpecRules {
  /** Name in messages, e.g. `Cloud Hypervisor`. */
  label: string;
  kernelFormats: readonly KernelFormat[];
  diskFormats: readonly ("raw" | "qcow2")[];
  maxCpus: number;
  /** Longest disk or NIC id the VMM accepts. */
  maxIdLength: number;
  /** The API socket the spec's runtime dir gives (its length is checked). */
  socket: string;
  /** Characters no path may contain (e.g. `,` where the VMM splits options on commas). */
  forbiddenPathChars?: string;
}

/** Unix socket paths are limited to 107 bytes plus the terminating NUL. */
const SUN_PATH_MAX = 107;
const ID = /^[a-z0-9_]+$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const TAP = /^[A-Za-z0-9_.-]{1,15}$/;

function invalid(field: string, message: string, value: unknown): VolantError {
  return new VolantError("invalid_argument", `VmSpec.${field}: ${message}`, { field, value });
}

/**
 * Checks what the VMM cannot be trusted to report clearly: sizes, ids, MACs, tap names, kernel
 * and disk formats, absolute paths and the socket path length. Throws `invalid_argument` naming
 * the field.
 *
 * @example
 * ```ts ignore
 * import { checkRestSpec } from "./rest_vmm.ts";
 * checkRestSpec(spec, {
 *   label: "Firecracker", kernelFormats: ["vmlinux"], diskFormats: ["raw"],
 *   maxCpus: 32, maxIdLength: 64, socket: `${spec.runtimeDir}/fc.sock`,
 * });
 * ```
 */
export function checkRestSpec(spec: VmSpec, rules: RestSpecRules): void {
  if (spec.id === "" || /\s/.test(spec.id)) {
    throw invalid("id", "must be non-empty without spaces", spec.id);
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
      `${rules.label} boots ${rules.kernelFormats.join(" or ")}, not ${spec.kernel.format} ` +
        "(use the vmlinux-generic kernel, or the qemu driver)",
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
  const checkId = (field: string, id: string, kind: string) => {
    if (!ID.test(id) || id.length > rules.maxIdLength || ids.has(`${kind}-${id}`)) {
      throw invalid(
        field,
        `must be unique and match [a-z0-9_]{1,${rules.maxIdLength}}`,
        id,
      );
    }
    ids.add(`${kind}-${id}`);
  };
  for (const [i, disk] of spec.disks.entries()) {
    checkId(`disks[${i}].id`, disk.id, "disk");
    if (!rules.diskFormats.includes(disk.format)) {
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

/**
 * The handle of a REST VMM (Cloud Hypervisor, Firecracker) of `driver` for `spec`, once its
 * process is known (the pid and start time guard re-adoption).
 */
export function restVmmHandle(
  driver: string,
  spec: VmSpec,
  apiSocket: string,
  pid: number,
  startTime: number,
): VmmHandle {
  return {
    driver,
    pid,
    startTime,
    apiSocket,
    runtimeDir: spec.runtimeDir,
    vmmLog: spec.vmmLog,
    ...(spec.jail ? { jail: spec.jail } : {}),
  };
}

/** Options of {@linkcode claimRuntimeDir}. */
export interface ClaimOptions {
  label: string;
  runtimeDir: string;
  socket: string;
  /** Files the VMM leaves behind (removed when stale), besides the socket. */
  files: readonly string[];
  /** True when a VMM answers on the socket. */
  answers: () => Promise<boolean>;
}

/**
 * Refuses (`invalid_state`) a runtime dir whose API socket still answers; otherwise removes the
 * stale socket and files so a new VMM can bind.
 *
 * @example
 * ```ts ignore
 * import { claimRuntimeDir } from "./rest_vmm.ts";
 * await claimRuntimeDir({ label: "Firecracker", runtimeDir, socket, files: [pidFile], answers });
 * ```
 */
export async function claimRuntimeDir(options: ClaimOptions): Promise<void> {
  let present = true;
  try {
    await Deno.lstat(options.socket);
  } catch {
    present = false;
  }
  if (present && await options.answers().catch(() => false)) {
    throw new VolantError(
      "invalid_state",
      `Runtime directory ${options.runtimeDir} belongs to a ${options.label} that is still ` +
        `running (${options.socket} answers); stop it first`,
      { runtimeDir: options.runtimeDir },
    );
  }
  for (const file of [options.socket, ...options.files]) await removeIfPresent(file);
}

/** Options of {@linkcode launchRestVmm}. */
export interface LaunchRestVmmOptions {
  label: string;
  /** The VMM's argv (binary first). */
  argv: readonly string[];
  /** Command words it runs through; each must exec, never fork. */
  prefix?: readonly string[];
  /** What `/proc/<pid>/exe` shows once the VMM runs. */
  exe: string;
  /** Receives the VMM's stdout and stderr (appended). */
  log: string;
  socket: string;
  /** Written with the VMM's pid once it runs. */
  pidFile: string;
  /** Files removed when the launch fails, besides socket and pid file. */
  files: readonly string[];
  /** Resolves once the API answers; throws (or rejects) while it does not. */
  ready: (timeoutMs: number) => Promise<void>;
  /** Limit from spawn until `ready` resolves. */
  startTimeoutMs: number;
  /** Limit for one `ready` attempt. */
  apiTimeoutMs: number;
  /** Launch the VMM in its jail (see `prepareVmmJail`): prefix, exe and cgroup to join. */
  jail?: VmmJailFiles;
  /** Called with the pid and start time as soon as the process exists (see `spawnDetached`). */
  onSpawn?: (pid: number, startTime: number) => void | Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/**
 * Spawns a VMM detached (see `spawnDetached`), writes its pid file and waits until `ready`
 * resolves. When the VMM exits first, never answers, or anything else fails, it is killed and
 * reaped, its socket, pid file and `files` are removed, and the error carries the tail of its
 * log: `vmm_failed` when it exited, `timeout` when it never answered (saying whether the
 * socket ever appeared).
 *
 * @example
 * ```ts ignore
 * import { launchRestVmm } from "./rest_vmm.ts";
 * const vmm = await launchRestVmm({
 *   label: "Cloud Hypervisor", argv, exe, log: spec.vmmLog, socket, pidFile, files: [],
 *   ready: (ms) => ping(socket, ms), startTimeoutMs: 10_000, apiTimeoutMs: 2_000,
 * });
 * ```
 */
export async function launchRestVmm(options: LaunchRestVmmOptions): Promise<DetachedProcess> {
  const removeFiles = async () => {
    for (const file of [options.socket, options.pidFile, ...options.files]) {
      await removeIfPresent(file);
    }
  };
  const jail = options.jail;
  const vmm = await spawnDetached({
    argv: options.argv,
    log: options.log,
    prefix: [...(options.prefix ?? []), ...(jail?.prefix ?? [])],
    exe: jail?.exe ?? options.exe,
    label: options.label,
    ...(jail ? { cgroupProcs: jail.cgroupProcs, clearEnv: true } : {}),
    ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}),
  }).catch(async (err) => {
    await removeFiles();
    throw err;
  });
  try {
    await Deno.writeTextFile(options.pidFile, `${vmm.pid}\n`);
    await waitReady(vmm, options);
    return vmm;
  } catch (err) {
    await killAndWait(vmm.pid, vmm.startTime);
    await removeFiles();
    throw err;
  }
}

async function waitReady(vmm: DetachedProcess, options: LaunchRestVmmOptions): Promise<void> {
  const deadline = Date.now() + options.startTimeoutMs;
  const seen: { exit: Deno.CommandStatus | null } = { exit: null };
  vmm.status.then((s) => seen.exit = s, () => {});
  const tail = async () => {
    const text = await logTail(options.log, vmm.logOffset, 10);
    return text ? `; its log ends: ${text}` : "; its log is empty";
  };
  const died = async (status: Deno.CommandStatus) =>
    new VolantError(
      "vmm_failed",
      `${options.label} ${
        status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`
      } while starting${await tail()}`,
      { pid: vmm.pid, code: status.code, vmmLog: options.log },
    );
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    if (seen.exit) throw await died(seen.exit);
    const left = Math.max(100, Math.min(options.apiTimeoutMs, deadline - Date.now()));
    try {
      await options.ready(left);
      return;
    } catch (err) {
      // Missing, refused or closed while the VMM starts (or dies): normal, look again.
      lastError = err;
    }
    const exit = await Promise.race([vmm.status, sleep(20).then(() => null)]);
    if (exit) throw await died(exit);
  }
  if (seen.exit) throw await died(seen.exit);
  const why = !(await exists(options.socket))
    ? "the socket never appeared"
    : lastError instanceof Error
    ? lastError.message
    : "no answer";
  throw new VolantError(
    "timeout",
    `${options.label} (pid ${vmm.pid}) did not answer on ${options.socket} within ` +
      `${options.startTimeoutMs} ms: ${why}${await tail()}`,
    { pid: vmm.pid, socket: options.socket, vmmLog: options.log },
  );
}
