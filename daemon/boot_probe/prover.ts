/**
 * volantd's {@linkcode BootProver}: before a driver is trusted with KVM, boot the real guest
 * kernel for that hypervisor (see `defaultKernelFor`) with the real stage-0 initramfs, whose
 * init only prints the probe marker and powers off, through that very driver — or take the
 * cached verdict for the same VMM binary, guest kernel, host kernel and KVM device.
 *
 * Files: `<runtime_dir>/probe/initramfs.cpio` and `<runtime_dir>/probe/<driver>/` exist only
 * while a probe runs (a probe cut short by `kill -9` is cleaned up, its VMM ended, by the next
 * start); the verdict file is the cache's.
 *
 * @module
 */
import type { KernelName } from "../../schema/mod.ts";
import {
  BOOT_PROBE_MARKER,
  type BootProver,
  type BootVerdict,
  type Driver,
  hostAccelFingerprint,
  probeBoot,
  probeNonce,
  reapProbeLeftovers,
} from "../../hypervisor/mod.ts";
import { writeBootInitramfs } from "../../kernels/boot_archive.ts";
import { STAGE0_DIR } from "../../kernels/initramfs.ts";
import { fileDigest } from "../../images/digest.ts";
import { defaultKernelFor, type GuestArtifacts, type GuestImage } from "../guest.ts";
import type { Logger } from "../log.ts";
import { PROBE_VERSION, type VerdictCache, type VerdictInputs } from "./verdicts.ts";

/** Options of {@linkcode bootProver}. */
export interface BootProverOptions {
  guest: GuestArtifacts;
  /** `guest.default_kernel`: the kernel a driver's VMs boot (`auto` follows the driver). */
  defaultKernel: KernelName | "auto";
  cache: VerdictCache;
  /** `<runtime_dir>/probe`: the probe's scratch space. */
  workDir: string;
  /** `hypervisor.boot_probe_timeout_ms`. */
  timeoutMs: number;
  logger: Logger;
  /** The probe itself; default {@linkcode probeBoot} (tests substitute a stand-in). */
  probe?: typeof probeBoot;
  /** Clock; default `new Date()`. */
  now?: () => Date;
  /** Extra kernel command-line words for the probe guest (none under KVM). */
  cmdline?: string;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The verdict inputs for hypervisor `driver` (its binary at `binary`) booting guest kernel
 * `kernel` from `kernelPath` on this host: what a cached verdict must match.
 */
export async function verdictInputs(
  driver: string,
  binary: string,
  kernel: KernelName,
  kernelPath: string,
  accel: "kvm" | "tcg" = "kvm",
): Promise<VerdictInputs> {
  const real = await Deno.realPath(binary);
  return {
    probe_version: PROBE_VERSION,
    driver,
    binary: real,
    binary_sha256: (await fileDigest(real)).digest,
    accel,
    kernel,
    kernel_sha256: (await fileDigest(kernelPath)).digest,
    ...await hostAccelFingerprint(),
  };
}

async function inputsFor(
  driver: Driver,
  kernel: KernelName,
  image: GuestImage,
): Promise<VerdictInputs> {
  const found = await driver.probe();
  if (!found.binary) throw new Error(`${driver.name}: no binary found (${found.reason ?? "?"})`);
  const accel = driver.kvm ? "kvm" : "tcg";
  return await verdictInputs(driver.name, found.binary, kernel, image.kernel.path, accel);
}

/**
 * The prover volantd hands to driver selection.
 *
 * @example
 * ```ts ignore
 * import { bootProver, VerdictCache } from "./mod.ts";
 * const prove = bootProver({
 *   guest, defaultKernel: "auto", cache: new VerdictCache(`${stateDir}/boot-verdicts.json`),
 *   workDir: `${runtimeDir}/probe`, timeoutMs: 15_000, logger,
 * });
 * const { driver, acceleration } = await chooseDriver(config.hypervisor, logger, { prove });
 * ```
 */
export function bootProver(options: BootProverOptions): BootProver {
  const probe = options.probe ?? probeBoot;
  const now = options.now ?? (() => new Date());
  const log = options.logger;
  return async (driver: Driver): Promise<BootVerdict> => {
    const kernel = defaultKernelFor(driver.name, options.defaultKernel);
    let image: GuestImage;
    let inputs: VerdictInputs;
    try {
      image = await options.guest.resolve(kernel);
      inputs = await inputsFor(driver, kernel, image);
    } catch (err) {
      // Nothing to boot (the guest is not built yet): no verdict, and none is cached.
      return {
        ok: false,
        cached: false,
        reason: `no probe boot was possible: ${message(err)} (restart volantd once the guest ` +
          "is built to prove KVM)",
      };
    }
    const { entry, problem } = await options.cache.lookup(inputs);
    if (problem) {
      log.warn("boot verdict cache unusable; probing again and replacing it", {
        path: options.cache.path,
        problem,
      });
    }
    if (entry) {
      log.info("KVM verdict from cache", {
        driver: driver.name,
        kernel,
        ok: entry.ok,
        reason: entry.reason ?? undefined,
        checked_at: entry.checked_at,
      });
      return {
        ok: entry.ok,
        cached: true,
        ms: entry.ms,
        checkedAt: entry.checked_at,
        ...(entry.reason ? { reason: entry.reason } : {}),
      };
    }
    const nonce = probeNonce();
    const initramfs = `${options.workDir}/initramfs.cpio`;
    const at = now();
    log.info("proving KVM: booting the guest kernel once", {
      driver: driver.name,
      kernel,
      timeout_ms: options.timeoutMs,
    });
    let result;
    try {
      await Deno.mkdir(options.workDir, { recursive: true, mode: 0o700 });
      // The init prints the marker and powers off; nothing else of the guest runs.
      await writeBootInitramfs(initramfs, {
        shared: image.initramfs,
        config: { v: 1, name: "volant-probe", hostname: "volant-probe" },
        env: {
          init: "none",
          exec: [
            `/${STAGE0_DIR}/bin/sh`,
            "-c",
            `echo ${BOOT_PROBE_MARKER} ${nonce}; exec /${STAGE0_DIR}/bin/poweroff -f`,
          ],
        },
      });
      result = await probe(driver, {
        kernel: image.kernel,
        initramfs,
        cmdline: ["panic=-1 reboot=t", options.cmdline ?? ""].join(" ").trim(),
        nonce,
      }, { workDir: `${options.workDir}/${driver.name}`, timeoutMs: options.timeoutMs });
    } finally {
      await Deno.remove(initramfs).catch(() => {});
      await Deno.remove(options.workDir).catch(() => {}); // only when empty
    }
    const verdict: BootVerdict = {
      ok: result.ok,
      cached: false,
      ms: result.ms,
      checkedAt: at.toISOString(),
      ...(result.reason ? { reason: result.reason } : {}),
    };
    (result.ok ? log.info : log.warn).call(log, "KVM probe boot", {
      driver: driver.name,
      kernel,
      ok: result.ok,
      ms: result.ms,
      reason: result.reason,
      console: result.consoleTail,
    });
    // A VMM that could not even start may be a passing fault: only a guest's verdict is kept.
    if (result.vmmStarted) {
      await options.cache.record(inputs, { ...result, checkedAt: at }).catch((err) =>
        log.warn("boot verdict not saved", { path: options.cache.path, error: err })
      );
    }
    return verdict;
  };
}

/** Ends what a probe cut short by `kill -9` left in `workDir` (its VMMs, its files). */
export async function cleanProbeDir(workDir: string): Promise<void> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(workDir));
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory) await reapProbeLeftovers(`${workDir}/${e.name}`);
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
}
