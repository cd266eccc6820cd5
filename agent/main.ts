/**
 * `kestrel`: Volant's PID 1 inside every microVM. As PID 1 it mounts, sets the hostname,
 * configures the NIC, serves its HTTP API on the NIC's address (port 12751 unless the boot config
 * says otherwise; only requests carrying the VM's secret), reaps zombies, prints `KESTREL_READY {json}`
 * and powers off on the power button, SIGTERM or
 * SIGINT. Anywhere else it refuses to touch the machine; `--dry-run` shows what it would do.
 *
 * @module
 */
import { type KestrelFlags, parseKestrelArgs } from "./args.ts";
import { boot, runPid1 } from "./pid1.ts";
import { findPowerButtons } from "./power.ts";
import { formatReadyLine, readReadyReport } from "./report.ts";
import { startServices } from "./services.ts";
import { drySystem, log, realSystem, type System } from "./system.ts";
import { KESTREL_VERSION } from "./version.ts";

/** `kestrel --help`. */
export const USAGE = `kestrel ${KESTREL_VERSION}: Volant's init (PID 1) inside a microVM

Usage:
  kestrel                    run as PID 1 (the guest's stage 0 starts it; refuses otherwise)
  kestrel --dry-run [opts]   show what PID 1 would do on this machine, change nothing

Options:
  --dry-run          read /proc and /sys, print the mount plan, hostname, network steps,
                     the ready line and whether the control port exists; never touches the
                     host's network
  --wait             with --dry-run: keep running until SIGTERM or SIGINT, then say how it
                     would power off
  --cmdline <text>   with --dry-run: use this kernel command line instead of /proc/cmdline
  --version          print the version
  -h, --help         print this help

As PID 1 it mounts what is missing (proc, sysfs, devtmpfs, devpts, /dev/shm, /tmp, /run),
reads its boot config (/volant/boot.json in the initramfs, removed once read, else
volant.boot=<base64url JSON> from /proc/cmdline), sets the hostname, configures the NIC
(address and default route from the boot config), serves its HTTP API on the NIC's address,
port 12751 unless the boot config names another (GET /healthz, POST /v1/net/check, the
workload's routes; every request must carry the VM's secret from the boot config as
Authorization: Bearer <secret>, anything else is 401), reaps orphans, prints
"KESTREL_READY {json}" on the console and powers off on the ACPI power button, SIGTERM or
SIGINT (Ctrl-Alt-Del). When the boot config names a control port (control_device, the VMM's
second serial port), kestrel holds it (raw, exclusive) and applies the new identity volantd sends a clone there (entropy, clock, hostname,
MAC, address, route, API secret and address, the workload's restore_signal), one JSON line in
and one out.`;

function withCmdline(system: System, cmdline: string | undefined): System {
  if (cmdline === undefined) return system;
  return {
    ...system,
    readText: (path) => path === "/proc/cmdline" ? Promise.resolve(cmdline) : system.readText(path),
  };
}

async function dryRun(cmdline: string | undefined, wait: boolean): Promise<number> {
  const system = withCmdline(drySystem(), cmdline);
  if (wait) {
    const report = await runPid1(system, { powerButtonAttempts: 1, catchGlobalErrors: false });
    return report === undefined ? 1 : 0;
  }
  try {
    const booted = await boot(system);
    const services = await startServices(system, booted);
    const buttons = await findPowerButtons();
    system.log(
      buttons.length > 0 ? `power button ${buttons.join(", ")}` : "no power button input device",
    );
    system.print(
      formatReadyLine(await readReadyReport(system, booted.name, services.network?.ip)),
    );
    await services.startControlChannel();
    return 0;
  } catch (err) {
    system.log(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/**
 * Runs kestrel with its arguments; resolves to the exit code. As PID 1 it only resolves if
 * powering off failed.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["--dry-run"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let values: KestrelFlags;
  try {
    values = parseKestrelArgs(args);
  } catch (err) {
    log(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(KESTREL_VERSION);
    return 0;
  }
  const dry = values["dry-run"] ?? false;
  if (!dry && (values.wait || values.cmdline !== undefined)) {
    log("--wait and --cmdline only go with --dry-run");
    return 2;
  }
  if (dry) return await dryRun(values.cmdline, values.wait ?? false);
  if (Deno.pid !== 1) {
    log(
      `refusing to run: kestrel is the init of a Volant microVM and must be PID 1 (this is ` +
        `pid ${Deno.pid}). Use \`kestrel --dry-run\` to see what it would do here.`,
    );
    return 2;
  }
  await runPid1(realSystem());
  log("power-off failed; exiting (the kernel will panic and the VM stop)");
  return 1;
}

if (import.meta.main) {
  // Entry of a kestrel-only bundle (`deno bundle agent/main.ts`): accepts the same argv as the
  // multi-call bundle, whose first argument is the role.
  Deno.exit(await main(Deno.args[0] === "kestrel" ? Deno.args.slice(1) : Deno.args));
}
