/**
 * `deno run -A tools/build_guest.ts [--kernel volant|debian] <guest-dir> <bundle.js>`: builds
 * (or reuses) the guest kernel, stage-0 initramfs and runtime image in `<guest-dir>` (see
 * `kernels/guest.ts`) and prints a short summary to stderr. `./volant up` and `./volant test`
 * run it. The kernel is Volant's own by default (built once from `linux-source-6.1`, minutes;
 * cached in `<guest-dir>/volant-kernel/`), Debian's cloud kernel with `--kernel debian` or when
 * Volant's cannot be built (the summary says why). `VOLANT_GUEST_KERNEL` sets the default.
 *
 * @module
 */
import { buildGuest, GUEST_KERNELS, type GuestKernel, type GuestManifest } from "../kernels/mod.ts";
import { VolantError } from "../schema/mod.ts";

const USAGE =
  "usage: deno run -A tools/build_guest.ts [--kernel volant|debian] <guest-dir> <bundle.js>";

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The summary lines printed after a build. */
export function summary(dir: string, m: GuestManifest): string[] {
  const lines = [
    `guest ${dir}: kernel ${m.kernel.abi} (${m.kernel.flavor}, ${m.kernel.package} ` +
    `${m.kernel.version}), built in ${m.build.seconds} s`,
  ];
  if (m.kernel.fallbackReason !== undefined) {
    lines.push(
      `  the Volant kernel could not be built, so Debian's is used: ${m.kernel.fallbackReason}`,
    );
  }
  for (const [name, file] of Object.entries(m.files)) {
    const what = m.build.rebuilt.includes(name as keyof GuestManifest["files"])
      ? "built"
      : "reused";
    lines.push(`  ${name.padEnd(16)} ${mib(file.size).padStart(10)}  ${what}`);
  }
  return lines;
}

function isKernel(value: string | undefined): value is GuestKernel {
  return GUEST_KERNELS.includes(value as GuestKernel);
}

/** Runs the CLI; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const positional: string[] = [];
  const fromEnv = Deno.env.get("VOLANT_GUEST_KERNEL") || undefined;
  let kernel: string | undefined = fromEnv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--kernel") kernel = args[++i];
    else if (arg.startsWith("--kernel=")) kernel = arg.slice("--kernel=".length);
    else positional.push(arg);
  }
  const [dir, bundle, ...rest] = positional;
  if (!dir || !bundle || rest.length > 0) {
    console.error(USAGE);
    return 2;
  }
  if (kernel !== undefined && !isKernel(kernel)) {
    console.error(`build_guest: --kernel must be volant or debian, not ${kernel}\n${USAGE}`);
    return 2;
  }
  try {
    const manifest = await buildGuest({
      dir,
      bundle,
      kernel,
      log: (line) => console.error(`build_guest: ${line}`),
    });
    for (const line of summary(dir, manifest)) console.error(line);
    return 0;
  } catch (err) {
    const message = err instanceof VolantError ? err.message : String(err);
    console.error(`build_guest: ${message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
