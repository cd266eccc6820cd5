/**
 * Proving an accelerator by booting: an open `/dev/kvm` that answers `KVM_GET_API_VERSION` is no
 * proof that a guest runs on it (nested PVM hosts expose a KVM device on which a stock guest
 * kernel hangs right after `Probing EDD`). {@linkcode probeBoot} boots the real guest kernel
 * once through the driver that will run VMs — same VMM binary, same accelerator — with an init
 * that prints {@linkcode BOOT_PROBE_MARKER} and powers off, and reports whether the marker
 * reached the serial console within a short deadline.
 *
 * The probe VMM is the daemon's own child, in a scratch directory that holds nothing else. It is
 * always ended (SIGTERM, then SIGKILL) and the directory removed, whatever happened. A handle file
 * records the VMM while it runs, so a probe cut short by a `kill -9` of the daemon is ended by
 * the next probe in the same directory ({@linkcode reapProbeLeftovers}).
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Driver, KernelFormat, VmmHandle, VmSpec } from "./driver.ts";
import { isAlive, killAndWait, readRange } from "./process/mod.ts";

/** The line the probe guest's init prints (followed by the probe's nonce) once it runs. */
export const BOOT_PROBE_MARKER = "VOLANT_BOOT_PROBE_OK";

/** The kernel command-line key carrying the probe's nonce (`volant.probe=<hex>`). */
export const BOOT_PROBE_CMDLINE_KEY = "volant.probe";

/** What the probe boots: the real guest kernel and an initramfs whose init prints the marker. */
export interface ProbeGuest {
  kernel: { path: string; format: KernelFormat };
  /** An initramfs whose init prints `<BOOT_PROBE_MARKER> <nonce>` and powers off. */
  initramfs: string;
  /**
   * Kernel command-line words besides `console=ttyS0` and `volant.probe=<nonce>` (which the
   * probe adds itself).
   */
  cmdline?: string;
  /** The nonce the init prints after the marker (a stale log line cannot pass for it). */
  nonce: string;
}

/** Options of {@linkcode probeBoot}. */
export interface BootProbeOptions {
  /**
   * A directory of the probe's own (created with mode 0700; emptied before and removed after):
   * the VMM's sockets, its log and the serial log.
   */
  workDir: string;
  /** How long the guest has from `boot` to the marker. */
  timeoutMs: number;
  /** Guest memory; default 128 MiB. */
  memoryMib?: number;
  /** How often the serial log is read; default 50 ms. */
  pollMs?: number;
}

/** What {@linkcode probeBoot} found. */
export interface BootProbeResult {
  /** The marker with the nonce reached the serial console in time. */
  ok: boolean;
  /** Milliseconds from `boot` to the marker (or to the failure). */
  ms: number;
  /** Why the probe failed, in one sentence. */
  reason?: string;
  /**
   * The VMM started and the guest ran (so a failure is the guest's, a verdict worth keeping);
   * false when the VMM could not even start (perhaps a passing fault).
   */
  vmmStarted: boolean;
  /** The last console lines (at most 5, each at most 200 characters) when it failed. */
  consoleTail?: string;
}

/** Serial output read by one probe, at most (the rest is not looked at). */
const MAX_SERIAL_BYTES = 1 << 20;
/** Serial output read per poll, at most. */
const READ_BYTES = 64 * 1024;
/** What is kept of the console for the failure message. */
const TAIL_BYTES = 4096;
const HANDLE_FILE = "vmm.json";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh random nonce for {@linkcode ProbeGuest.nonce}. */
export function probeNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The last `lines` printable console lines of `text`, each cut to 200 characters (the console
 * is the guest's: control characters are dropped).
 *
 * @example
 * ```ts
 * import { consoleTail } from "./boot_probe.ts";
 * console.assert(consoleTail("a\nProbing EDD ... ok\r\n\x1b[0m\n", 1) === "Probing EDD ... ok");
 * ```
 */
export function consoleTail(text: string, lines = 5): string {
  return text.split("\n")
    // deno-lint-ignore no-control-regex
    .map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/[\x00-\x1f\x7f]/g, "").trim())
    .filter((l) => l !== "")
    .slice(-lines)
    .map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l))
    .join("\n");
}

/**
 * Whether `text` holds the marker line for `nonce` at the start of a line.
 *
 * @example
 * ```ts
 * import { hasProbeMarker } from "./boot_probe.ts";
 * console.assert(hasProbeMarker("x\nVOLANT_BOOT_PROBE_OK ab12\r\n", "ab12"));
 * console.assert(!hasProbeMarker("exec sh -c 'echo VOLANT_BOOT_PROBE_OK ab12'\n", "ab12"));
 * ```
 */
export function hasProbeMarker(text: string, nonce: string): boolean {
  const line = `${BOOT_PROBE_MARKER} ${nonce}`;
  return text.startsWith(line) || text.includes(`\n${line}`);
}

/**
 * Ends a probe VMM a previous probe in `workDir` left running (the daemon was killed during it)
 * and removes the directory. Never throws.
 */
export async function reapProbeLeftovers(workDir: string): Promise<void> {
  try {
    const text = await Deno.readTextFile(`${workDir}/${HANDLE_FILE}`);
    const left = JSON.parse(text) as { pid?: unknown; startTime?: unknown };
    if (typeof left.pid === "number" && typeof left.startTime === "number") {
      if (await isAlive(left.pid, left.startTime)) await killAndWait(left.pid, left.startTime);
    }
  } catch {
    // No handle file, or an unreadable one: nothing recorded to end.
  }
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Boots `guest` once through `driver` and waits for the marker. Never throws for a guest or VMM
 * that fails: that is the result. The VMM is ended and `workDir` removed before it resolves.
 *
 * @example
 * ```ts ignore
 * import { probeBoot, probeNonce } from "./boot_probe.ts";
 * const result = await probeBoot(driver, {
 *   kernel: { path: "/var/lib/volant/guest/bzImage-volant", format: "bzImage" },
 *   initramfs: "/run/volant/probe/initramfs.cpio",
 *   nonce: probeNonce(),
 * }, { workDir: "/run/volant/probe/qemu-kvm", timeoutMs: 15_000 });
 * console.log(result.ok ? `booted in ${result.ms} ms` : result.reason);
 * ```
 */
export async function probeBoot(
  driver: Driver,
  guest: ProbeGuest,
  options: BootProbeOptions,
): Promise<BootProbeResult> {
  const dir = options.workDir;
  await reapProbeLeftovers(dir);
  await Deno.mkdir(`${dir}/run`, { recursive: true, mode: 0o700 });
  const spec: VmSpec = {
    id: "volant-probe",
    cpus: 1,
    memoryMib: options.memoryMib ?? 128,
    kernel: guest.kernel,
    initramfs: guest.initramfs,
    cmdline: ["console=ttyS0", guest.cmdline ?? "", `${BOOT_PROBE_CMDLINE_KEY}=${guest.nonce}`]
      .filter((w) => w !== "").join(" "),
    disks: [],
    nics: [],
    serialLog: `${dir}/serial.log`,
    vmmLog: `${dir}/vmm.log`,
    runtimeDir: `${dir}/run`,
  };
  const vmm: { handle?: VmmHandle } = {};
  let outcome: BootProbeResult | undefined;
  let failure: unknown;
  try {
    outcome = await watchProbe(driver, spec, guest, options, vmm);
  } catch (err) {
    failure = err;
  }
  if (vmm.handle) {
    const handle = vmm.handle;
    try {
      await driver.shutdown(handle, { gracefulMs: 0, termMs: 1_000 });
    } catch (err) {
      // Still there after SIGKILL: keep the handle file, so the next probe tries again.
      throw new VolantError(
        "vmm_failed",
        `The probe VMM (pid ${handle.pid}) could not be ended: ${message(err)}`,
        { pid: handle.pid },
      );
    }
    await driver.cleanup(handle).catch(() => {});
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  if (failure !== undefined) throw failure;
  return outcome!;
}

/** Starts the probe VM and watches its console until the marker, an exit or the deadline. */
async function watchProbe(
  driver: Driver,
  spec: VmSpec,
  guest: ProbeGuest,
  options: BootProbeOptions,
  vmm: { handle?: VmmHandle },
): Promise<BootProbeResult> {
  const started = Date.now();
  let handle: VmmHandle;
  try {
    handle = vmm.handle = await driver.create(spec);
    await Deno.writeTextFile(
      `${options.workDir}/${HANDLE_FILE}`,
      JSON.stringify({ pid: handle.pid, startTime: handle.startTime }),
      { mode: 0o600 },
    );
    await driver.boot(handle);
  } catch (err) {
    return {
      ok: false,
      ms: Date.now() - started,
      reason: `${driver.name} could not start the probe VM: ${message(err)}`,
      vmmStarted: false,
    };
  }
  const booted = Date.now();
  const deadline = booted + options.timeoutMs;
  const decoder = new TextDecoder();
  let read = 0;
  let tail = "";
  const pollMs = options.pollMs ?? 50;
  while (true) {
    const chunk = await readRange(
      spec.serialLog,
      read,
      Math.min(READ_BYTES, MAX_SERIAL_BYTES - read),
    );
    read += chunk.length;
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-TAIL_BYTES);
    if (hasProbeMarker(tail, guest.nonce)) {
      return { ok: true, ms: Date.now() - booted, vmmStarted: true };
    }
    const now = Date.now();
    const alive = await isAlive(handle.pid, handle.startTime);
    if (!alive || now >= deadline) {
      // One last read: the marker may have landed just before the VMM exited.
      const last = await readRange(
        spec.serialLog,
        read,
        Math.min(READ_BYTES, MAX_SERIAL_BYTES - read),
      );
      tail = (tail + decoder.decode(last)).slice(-TAIL_BYTES);
      if (hasProbeMarker(tail, guest.nonce)) {
        return { ok: true, ms: Date.now() - booted, vmmStarted: true };
      }
      const lines = consoleTail(tail);
      const seen = lines ? ` (last console line: ${lines.split("\n").at(-1)})` : "";
      const vmm = alive ? "" : consoleTail(await Deno.readTextFile(spec.vmmLog).catch(() => ""));
      return {
        ok: false,
        ms: now - booted,
        reason: alive
          ? `the guest kernel did not reach its init within ${options.timeoutMs} ms${seen}`
          : `the VMM exited before the guest reached its init${seen}` +
            (vmm ? `; VMM log: ${vmm.split("\n").at(-1)}` : ""),
        ...(lines ? { consoleTail: lines } : {}),
        vmmStarted: true,
      };
    }
    await sleep(Math.min(pollMs, Math.max(1, deadline - now)));
  }
}
