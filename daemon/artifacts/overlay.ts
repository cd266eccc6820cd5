/**
 * Copy-on-write disks for VMs: a qcow2 overlay whose backing file is a cached (read-only)
 * blob, so a VM's writable root file system never copies the image. Writes land in the
 * overlay; reads of untouched clusters come from the blob.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";
import { causeText } from "./_source.ts";
import { removeQuietly } from "./_store.ts";

/** The formats a base image can have. */
export type DiskFormat = "raw" | "qcow2";

/** Options of {@linkcode createOverlay} and {@linkcode overlayInfo}. */
export interface OverlayOptions {
  /** The overlay's virtual size in bytes; default the base's. Never smaller than the base. */
  virtualSize?: number;
  /** The qemu-img program. @default {"qemu-img"} */
  qemuImg?: string;
}

/** What `qemu-img info` says about an image, plus its real size on disk. */
export interface OverlayInfo {
  /** The image's path. */
  path: string;
  /** Its format (`qcow2` for an overlay). */
  format: string;
  /** The backing file as recorded in the image, or `null`. */
  backingFile: string | null;
  /** The backing file's format as recorded, or `null`. */
  backingFormat: string | null;
  /** The size the guest sees, in bytes. */
  virtualSize: number;
  /** Bytes allocated on disk (`st_blocks * 512`). */
  diskBytes: number;
}

/**
 * Creates `overlayPath`, a qcow2 image backed by `baseBlobPath` (absolute; `format` is the
 * base's format), with `qemu-img create -f qcow2 -F <format> -b <base>`. The overlay is
 * created under a temp name and linked into place, so an existing file is never overwritten
 * (`already_exists`). A missing base is `not_found`; a missing qemu-img (Debian package
 * qemu-utils) is `hypervisor_unavailable`.
 *
 * @example
 * ```ts ignore
 * import { createOverlay } from "./overlay.ts";
 * const info = await createOverlay(blob.path, "/var/lib/volant/vms/web/rootfs.qcow2", "raw");
 * console.log(info.backingFile, info.diskBytes); // the blob, ~200 KiB
 * ```
 */
export async function createOverlay(
  baseBlobPath: string,
  overlayPath: string,
  format: DiskFormat,
  options: OverlayOptions = {},
): Promise<OverlayInfo> {
  checkArguments(baseBlobPath, overlayPath, format, options);
  const base = await Deno.stat(baseBlobPath).catch((e) => {
    throw e instanceof Deno.errors.NotFound
      ? new VolantError("not_found", `Overlay base ${baseBlobPath} does not exist`, {
        base: baseBlobPath,
      })
      : e;
  });
  if (!base.isFile) {
    throw new VolantError("invalid_argument", `Overlay base ${baseBlobPath} is not a file`, {
      base: baseBlobPath,
    });
  }
  const tmp = `${overlayPath}.${crypto.randomUUID()}.tmp`;
  const args = ["create", "-q", "-f", "qcow2", "-F", format, "-b", baseBlobPath, tmp];
  if (options.virtualSize !== undefined) args.push(String(options.virtualSize));
  try {
    await qemuImg(options, args);
    await Deno.chmod(tmp, 0o600);
    try {
      await Deno.link(tmp, overlayPath);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new VolantError(
          "already_exists",
          `Overlay ${overlayPath} already exists; delete it first to recreate the disk`,
          { overlay: overlayPath },
        );
      }
      throw e;
    }
  } finally {
    await removeQuietly(tmp);
  }
  return await overlayInfo(overlayPath, options);
}

/**
 * Reads an image's format, backing file and sizes with `qemu-img info -U` (works while a VM
 * has the image open).
 *
 * @example
 * ```ts ignore
 * import { overlayInfo } from "./overlay.ts";
 * const { backingFile } = await overlayInfo("/var/lib/volant/vms/web/rootfs.qcow2");
 * ```
 */
export async function overlayInfo(
  path: string,
  options: OverlayOptions = {},
): Promise<OverlayInfo> {
  const out = await qemuImg(options, ["info", "-U", "--output=json", path]);
  const info = JSON.parse(out) as Record<string, unknown>;
  const stat = await Deno.stat(path);
  return {
    path,
    format: String(info["format"]),
    backingFile: typeof info["backing-filename"] === "string" ? info["backing-filename"] : null,
    backingFormat: typeof info["backing-filename-format"] === "string"
      ? info["backing-filename-format"]
      : null,
    virtualSize: Number(info["virtual-size"]),
    diskBytes: (stat.blocks ?? 0) * 512,
  };
}

function checkArguments(
  base: string,
  overlay: string,
  format: string,
  options: OverlayOptions,
): void {
  const bad = (field: string, value: unknown, why: string) =>
    new VolantError("invalid_argument", `${field}: ${JSON.stringify(value)} ${why}`, {
      field,
      value,
    });
  if (!base.startsWith("/")) throw bad("base", base, "must be an absolute path");
  if (!overlay.startsWith("/")) throw bad("overlay", overlay, "must be an absolute path");
  if (format !== "raw" && format !== "qcow2") throw bad("format", format, "must be raw or qcow2");
  const size = options.virtualSize;
  if (size !== undefined && (!Number.isSafeInteger(size) || size <= 0)) {
    throw bad("virtualSize", size, "must be a positive whole number of bytes");
  }
}

async function qemuImg(options: OverlayOptions, args: string[]): Promise<string> {
  const program = options.qemuImg ?? "qemu-img";
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "hypervisor_unavailable",
        `${program} is not installed; install the Debian package qemu-utils`,
        { program },
        { cause: e },
      );
    }
    throw new VolantError("internal", `Cannot run ${program}: ${causeText(e)}`, { program }, {
      cause: e,
    });
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new VolantError(
      "internal",
      `${program} ${args[0]} failed (exit ${output.code}): ${stderr || "no message"}`,
      { program, args, code: output.code },
    );
  }
  return new TextDecoder().decode(output.stdout);
}
