/**
 * The PID 1 boot sequence: Ctrl-Alt-Del to SIGINT, mounts, boot config and hostname, zombie
 * reaping, power watch, the ready line; then wait for a power request (or a fatal error) and
 * power off cleanly. Every side effect goes through a {@linkcode System}.
 *
 * @module
 */
import { STAGE0_MARKS, Timeline } from "./timeline.ts";
import { $ZodError } from "zod/v4/core";
import {
  BOOT_CONFIG_PATH,
  BootConfig,
  decodeBootConfig,
  GUEST_ROOT_DIR,
  KESTREL_BOOT_CONFIG,
  type ReadyReport,
} from "../schema/boot_config.ts";
import { adoptEarlyWorkload, type AdoptedRun } from "./workload/adopt.ts";
import { fromZodError } from "../schema/error.ts";
import { describeMount, ensureMounts, type MountSpec } from "./mounts.ts";
import { findPowerButtons, type PowerReason, type PowerWatch, watchPower } from "./power.ts";
import { Reaper } from "./reaper.ts";
import { formatReadyLine, readReadyReport } from "./report.ts";
import { type Services, type ServicesOptions, startServices } from "./services.ts";
import type { System } from "./system.ts";
import { KESTREL_VERSION } from "./version.ts";
import { HOSTNAME_MAX, isValidHostname } from "./hostname.ts";

/** Hostname (and VM name in the report) when the boot config is missing or invalid. */
export const DEFAULT_HOSTNAME = "volant";

/** The boot config as kestrel uses it, with the problem that made it fall back, if any. */
export interface ResolvedBoot {
  /** The decoded config; `undefined` when absent or invalid. */
  config: BootConfig | undefined;
  /** The VM name for the ready report. */
  name: string;
  /** The hostname to set. */
  hostname: string;
  /** Why defaults were used (printed on the console), if they were. */
  problems: string[];
}

function message(err: unknown): string {
  if (err instanceof $ZodError) return fromZodError(err).message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads the boot config from `file` (the text of {@linkcode BOOT_CONFIG_PATH}) when given,
 * else from a kernel command line. Never throws: a missing or invalid
 * config, or an invalid hostname, falls back to {@linkcode DEFAULT_HOSTNAME} with a problem.
 *
 * @example
 * ```ts
 * import { resolveBoot } from "./pid1.ts";
 * import { encodeBootConfig } from "../schema/boot_config.ts";
 * const r = resolveBoot(`quiet ${encodeBootConfig({ v: 1, name: "web", hostname: "web" })}`);
 * console.assert(r.hostname === "web" && r.problems.length === 0);
 * console.assert(resolveBoot("quiet").hostname === "volant");
 * ```
 */
export function resolveBoot(cmdline: string, file?: string): ResolvedBoot {
  let config: BootConfig | undefined;
  const source = file === undefined ? "volant.boot" : BOOT_CONFIG_PATH;
  try {
    config = file === undefined ? decodeBootConfig(cmdline) : BootConfig.parse(JSON.parse(file));
  } catch (err) {
    return {
      config: undefined,
      name: DEFAULT_HOSTNAME,
      hostname: DEFAULT_HOSTNAME,
      problems: [`invalid boot config (${source}): ${message(err)}; using defaults`],
    };
  }
  if (config === undefined) {
    return {
      config,
      name: DEFAULT_HOSTNAME,
      hostname: DEFAULT_HOSTNAME,
      problems: [
        `no ${BOOT_CONFIG_PATH} in the initramfs and no volant.boot on the kernel command line; using defaults`,
      ],
    };
  }
  if (!isValidHostname(config.hostname)) {
    return {
      config,
      name: config.name,
      hostname: DEFAULT_HOSTNAME,
      problems: [
        `invalid hostname ${JSON.stringify(config.hostname)} in the boot config ` +
        `(letters, digits, inner hyphens, dots; at most ${HOSTNAME_MAX} bytes); using ${DEFAULT_HOSTNAME}`,
      ],
    };
  }
  return { config, name: config.name, hostname: config.hostname, problems: [] };
}

/**
 * Removes the boot config file once read: it holds the secret of kestrel's API, and the
 * initramfs root it sits in is the workload's root on the initramfs path. kestrel keeps the
 * secret in memory only (never in the workload's environment). A failure is logged, not fatal.
 */
async function forgetBootFile(system: System, path: string): Promise<void> {
  try {
    await system.remove(path);
  } catch (err) {
    system.log(`warning: cannot remove ${path} (it holds kestrel's secret): ${message(err)}`);
  }
}

/** The kernel's hostname as read back from /proc (the proof it was set), or `fallback`. */
async function readHostname(system: System, fallback: string): Promise<string> {
  try {
    return (await system.readText("/proc/sys/kernel/hostname")).trim();
  } catch {
    return fallback;
  }
}

/** What {@linkcode boot} did. */
export interface BootResult extends ResolvedBoot {
  /** The filesystems it mounted. */
  mounted: MountSpec[];
}

/**
 * Prepares the machine: Ctrl-Alt-Del to SIGINT, mounts what is missing, reads the boot
 * config ({@linkcode BOOT_CONFIG_PATH} in the initramfs root, removed once read, else
 * `/proc/cmdline`) and sets the hostname. Throws on a mount or hostname failure.
 *
 * @example
 * ```ts ignore
 * import { boot } from "./pid1.ts";
 * import { drySystem } from "./system.ts";
 * const result = await boot(drySystem());
 * ```
 */
export async function boot(system: System): Promise<BootResult> {
  try {
    system.cadOff();
  } catch (err) {
    system.log(`warning: cannot route Ctrl-Alt-Del to SIGINT: ${message(err)}`);
  }
  const mounted = await ensureMounts(system);
  if (!system.dryRun) { for (const spec of mounted) system.log(`mounted ${describeMount(spec)}`); }
  let cmdline = "";
  try {
    cmdline = await system.readText("/proc/cmdline");
  } catch (err) {
    system.log(`warning: cannot read /proc/cmdline: ${message(err)}`);
  }
  // Stage 0 moves the file out of the workload's root; an older stage 0 left it in place.
  let file: string | undefined;
  let path = KESTREL_BOOT_CONFIG;
  for (const candidate of [KESTREL_BOOT_CONFIG, `${GUEST_ROOT_DIR}${BOOT_CONFIG_PATH}`]) {
    try {
      file = await system.readText(candidate);
      path = candidate;
      break;
    } catch {
      file = undefined;
    }
  }
  const resolved = resolveBoot(cmdline, file);
  for (const problem of resolved.problems) system.log(problem);
  if (file !== undefined) await forgetBootFile(system, path);
  system.sethostname(resolved.hostname);
  if (!system.dryRun) system.log(`hostname ${await readHostname(system, resolved.hostname)}`);
  return { ...resolved, mounted };
}

/**
 * Syncs and powers off after running `stop` (what kestrel supervises). Returns only if the
 * power-off call returned (dry run) and throws if it failed.
 *
 * @example
 * ```ts ignore
 * import { powerOff } from "./pid1.ts";
 * import { drySystem } from "./system.ts";
 * await powerOff(drySystem(), "SIGTERM");
 * ```
 */
export async function powerOff(
  system: System,
  reason: PowerReason | "fatal error",
  stop: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  system.log(`powering off (${reason})`);
  try {
    await stop();
  } catch (err) {
    system.log(`warning: stopping workloads failed: ${message(err)}`);
  }
  system.sync();
  system.powerOff();
}

/** Options of {@linkcode runPid1}; the network and API ones are {@linkcode ServicesOptions}. */
export interface Pid1Options extends Omit<ServicesOptions, "timeline"> {
  /** The boot's timeline; default one from /proc/uptime and stage 0's marks. */
  timeline?: Timeline;
  /** Starts the power watch; default {@linkcode watchPower} on the discovered power buttons. */
  watch?: (system: System) => Promise<PowerWatch>;
  /** The zombie reaper; default a new {@linkcode Reaper} for this process. */
  reaper?: Reaper;
  /** Catch uncaught errors and unhandled rejections process-wide; default true. */
  catchGlobalErrors?: boolean;
  /** Attempts to find the power button (500 ms apart) before giving up; default 5. */
  powerButtonAttempts?: number;
  /** Stops supervised workloads before power-off; default nothing. */
  stop?: () => Promise<void>;
}

/** The workload stage 0 started, adopted; `undefined` (and a log line) when it cannot be. */
async function adoptEarly(system: System, reaper: Reaper): Promise<AdoptedRun | undefined> {
  try {
    return await adoptEarlyWorkload({ claim: (pid) => reaper.claim(pid), log: system.log });
  } catch (err) {
    system.log(`cannot adopt the workload stage 0 started (${message(err)}); starting it anew`);
    return undefined;
  }
}

function readUptime(): string | undefined {
  try {
    return Deno.readTextFileSync("/proc/uptime");
  } catch {
    return undefined;
  }
}

function stage0Marks(): Record<string, string | undefined> {
  try {
    return Object.fromEntries(STAGE0_MARKS.map((name) => [name, Deno.env.get(name)]));
  } catch {
    return {};
  }
}

async function discoverButtons(attempts: number): Promise<string[]> {
  for (let i = 1; i <= attempts; i++) {
    const found = await findPowerButtons();
    if (found.length > 0 || i === attempts) return found;
    await new Promise((r) => setTimeout(r, 500));
  }
  return [];
}

async function defaultWatch(system: System, attempts: number): Promise<PowerWatch> {
  const devices = await discoverButtons(attempts);
  if (devices.length === 0) {
    system.log("warning: no power button input device; graceful stop only through SIGTERM");
  } else {
    system.log(`power button ${devices.join(", ")}`);
  }
  return watchPower({ devices, log: system.log });
}

/**
 * Runs PID 1 to the end: boot, reaper, power watch, network and HTTP API, the `KESTREL_READY`
 * line (once the API listens), the console shell and the guest control channel (new identities
 * for clones, when the VMM has the port), then waits for a power request and powers off
 * (stopping the control channel, the workload and the API first). Any error, thrown or uncaught anywhere, is printed as
 * `kestrel: fatal: <message>` and also powers off. Resolves only when the power-off call
 * returned (a dry run) or failed (already logged).
 *
 * @example
 * ```ts ignore
 * import { runPid1 } from "./pid1.ts";
 * import { realSystem } from "./system.ts";
 * if (Deno.pid === 1) await runPid1(realSystem());
 * ```
 */
export async function runPid1(
  system: System,
  options: Pid1Options = {},
): Promise<ReadyReport | undefined> {
  const { promise: failed, resolve: fail } = Promise.withResolvers<{ error: unknown }>();
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    fail({ error: event.reason });
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    fail({ error: event.error ?? event.message });
  };
  const catchGlobal = options.catchGlobalErrors ?? true;
  if (catchGlobal) {
    globalThis.addEventListener("unhandledrejection", onRejection);
    globalThis.addEventListener("error", onError);
  }
  const reaper = options.reaper ?? new Reaper();
  let watch: PowerWatch | undefined;
  let services: Services | undefined;
  let report: ReadyReport | undefined;
  try {
    let reason: PowerReason | "fatal error";
    try {
      const loaded = Math.round(performance.now());
      const timeline = options.timeline ?? new Timeline(readUptime, stage0Marks(), loaded);
      system.log(
        `kestrel ${KESTREL_VERSION} starting${system.dryRun ? " (dry run)" : ""}, ` +
          `${loaded} ms after the runtime started`,
      );
      // Finding and opening the power button runs alongside the boot steps (it is slow under
      // emulation); readiness is announced only once both are done.
      const watching = options.watch === undefined
        ? defaultWatch(system, options.powerButtonAttempts ?? 5)
        : options.watch(system);
      const started = (async () => {
        const booted = await boot(system);
        timeline.mark("mounts_ms");
        // Claimed before the reaper's first scan, so its status is not taken for an orphan's.
        const adopt = system.dryRun ? undefined : await adoptEarly(system, reaper);
        reaper.start();
        return {
          booted,
          services: await startServices(system, booted, {
            reaper,
            timeline,
            ...options,
            ...(adopt ? { adopt } : {}),
          }),
        };
      })();
      const up = await started.catch(async (err) => {
        (await watching.catch(() => undefined))?.stop();
        throw err;
      });
      services = up.services;
      watch = await watching;
      timeline.mark("ready_ms");
      report = {
        ...await readReadyReport(system, up.booted.name, up.services.network?.ip),
        timeline: timeline.value(),
      };
      system.print(formatReadyLine(report));
      services.startConsoleShell();
      // New identities (a clone of this VM) arrive on the control port, when the VMM has one.
      await services.startControlChannel();
      const outcome = await Promise.race([
        watch.requested.then((r) => ({ reason: r })),
        failed,
      ]);
      if ("error" in outcome) throw outcome.error;
      reason = outcome.reason;
    } catch (err) {
      system.log(`fatal: ${message(err)}`);
      reason = "fatal error";
    }
    const stopAll = async () => {
      await services?.stop();
      await options.stop?.();
    };
    try {
      await powerOff(system, reason, stopAll);
    } catch (err) {
      system.log(`fatal: cannot power off: ${message(err)}`);
    }
    return report;
  } finally {
    watch?.stop();
    await services?.stop();
    reaper.stop();
    if (catchGlobal) {
      globalThis.removeEventListener("unhandledrejection", onRejection);
      globalThis.removeEventListener("error", onError);
    }
  }
}
