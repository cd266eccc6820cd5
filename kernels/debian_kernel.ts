/**
 * Acquires Debian's cloud kernel without installing it into the host's /boot:
 * `apt-get download linux-image-<abi>-cloud-amd64` + `dpkg-deb -x` into a cache directory,
 * then records the image's sha256. Idempotent: a second call reuses what is there. The image
 * stays where the package puts it (`pkg/boot/vmlinuz-<abi>`), so a guest dir that is also the
 * kernel cache can hold another kernel as `bzImage-volant`.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { sha256File } from "./_hash.ts";

/** What {@linkcode fetchDebianKernel} recorded in `<dir>/kernel.json`. */
export interface KernelInfo {
  /** Debian package name, e.g. `linux-image-6.1.0-56-cloud-amd64`. */
  package: string;
  /** Package version, e.g. `6.1.192-2`. */
  version: string;
  /** Kernel ABI / `uname -r`, e.g. `6.1.0-56-cloud-amd64`. */
  abi: string;
  /** Absolute path of the bzImage (`<dir>/pkg/boot/vmlinuz-<abi>`). */
  bzImage: string;
  /** `sha256:<hex>` of the bzImage. */
  bzImageSha256: string;
  /** Absolute path of the extracted modules tree (`<dir>/pkg/lib/modules/<abi>`). */
  modulesDir: string;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    throw new VolantError(
      "kernel_not_found",
      `Cannot run ${cmd}: ${(err as Error).message} (install it with apt-get)`,
    );
  }
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new VolantError(
      "kernel_not_found",
      `${cmd} ${args.join(" ")} failed: ${stderr.split("\n").slice(-3).join(" ")}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Resolves the concrete package behind `linux-image-cloud-amd64` (it changes with point releases). */
export async function resolveCloudKernelPackage(): Promise<string> {
  const text = await run("apt-cache", ["depends", "linux-image-cloud-amd64"]);
  const match = text.match(/Depends:\s+(linux-image-[0-9][^\s]*-cloud-amd64)/);
  if (!match?.[1]) {
    throw new VolantError(
      "kernel_not_found",
      "apt-cache knows no linux-image-cloud-amd64 dependency; run apt-get update",
    );
  }
  return match[1];
}

/** Where the package puts the image, beside the modules tree: `<root>/boot/vmlinuz-<abi>`. */
function packagedImage(modulesDir: string, abi: string): string {
  return modulesDir.replace(/\/lib\/modules\/[^/]+\/*$/, `/boot/vmlinuz-${abi}`);
}

/**
 * Reads `<dir>/kernel.json` and checks the image is still there with the recorded sha256. The
 * image is looked for in the extracted package first: a `kernel.json` written before the image
 * stayed there names `<dir>/bzImage-volant`, which may since hold another kernel.
 */
export async function readKernelInfo(dir: string): Promise<KernelInfo | undefined> {
  try {
    const info = JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`)) as KernelInfo;
    await Deno.stat(info.modulesDir);
    for (const bzImage of new Set([packagedImage(info.modulesDir, info.abi), info.bzImage])) {
      const sha = await sha256File(bzImage).catch(() => undefined);
      if (sha === info.bzImageSha256) return { ...info, bzImage };
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * Downloads and extracts the Debian cloud kernel into `dir` unless it is there already.
 *
 * @example
 * ```ts ignore
 * const k = await fetchDebianKernel("/var/lib/volant/guest");
 * console.log(k.bzImage, k.bzImageSha256);
 * ```
 */
export async function fetchDebianKernel(dir: string): Promise<KernelInfo> {
  const existing = await readKernelInfo(dir);
  if (existing) return existing;
  const pkg = await resolveCloudKernelPackage();
  const debs = `${dir}/debs`;
  await Deno.mkdir(debs, { recursive: true });
  await run("apt-get", ["download", pkg], debs);
  const deb = [...Deno.readDirSync(debs)].map((e) => e.name).find((n) =>
    n.startsWith(`${pkg}_`) && n.endsWith(".deb")
  );
  if (!deb) throw new VolantError("kernel_not_found", `apt-get download left no ${pkg} .deb`);
  const version = deb.slice(pkg.length + 1).split("_")[0] ?? "unknown";
  const pkgDir = `${dir}/pkg`;
  await Deno.remove(pkgDir, { recursive: true }).catch(() => {});
  await run("dpkg-deb", ["-x", `${debs}/${deb}`, pkgDir]);
  const abi = pkg.replace(/^linux-image-/, "");
  const bzImage = `${pkgDir}/boot/vmlinuz-${abi}`;
  const info: KernelInfo = {
    package: pkg,
    version,
    abi,
    bzImage,
    bzImageSha256: await sha256File(bzImage),
    modulesDir: `${pkgDir}/lib/modules/${abi}`,
  };
  await Deno.writeTextFile(`${dir}/kernel.json`, JSON.stringify(info, null, 2) + "\n");
  return info;
}
