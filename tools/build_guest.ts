/**
 * `deno run -A tools/build_guest.ts <guest-dir> <bundle.js>`: builds (or reuses) the guest
 * kernel, stage-0 initramfs and runtime image in `<guest-dir>` (see `kernels/guest.ts`) and
 * prints a short summary to stderr. `./volant up` and `./volant test` run it.
 *
 * @module
 */
import { buildGuest, type GuestManifest } from "../kernels/mod.ts";
import { VolantError } from "../schema/mod.ts";

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The summary lines printed after a build. */
export function summary(dir: string, m: GuestManifest): string[] {
  const lines = [
    `guest ${dir}: kernel ${m.kernel.abi} (${m.kernel.version}), built in ${m.build.seconds} s`,
  ];
  for (const [name, file] of Object.entries(m.files)) {
    const what = m.build.rebuilt.includes(name as keyof GuestManifest["files"])
      ? "built"
      : "reused";
    lines.push(`  ${name.padEnd(16)} ${mib(file.size).padStart(10)}  ${what}`);
  }
  return lines;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const [dir, bundle, ...rest] = args;
  if (!dir || !bundle || rest.length > 0) {
    console.error("usage: deno run -A tools/build_guest.ts <guest-dir> <bundle.js>");
    return 2;
  }
  try {
    const manifest = await buildGuest({
      dir,
      bundle,
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
