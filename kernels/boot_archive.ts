/**
 * The per-VM part of a guest's initramfs: a small cpio archive carrying the boot config
 * (`/volant/boot.json`, read by kestrel) and the stage-0 settings ({@linkcode BOOT_ENV_PATH}),
 * appended after the shared stage-0 archive (and a plugin's archive). The kernel unpacks
 * concatenated archives in order, later files winning, so nothing earlier can override the
 * boot config, and nothing travels on the kernel command line (no size limit).
 *
 * @example
 * ```ts
 * import { bootEnvText } from "./boot_archive.ts";
 * const text = bootEnvText({ v: 1, name: "web", hostname: "web", console_shell: false }, {
 *   init: "none",
 *   exec: ["/bin/httpd", "-f"],
 * });
 * console.assert(text.includes("VOLANT_EXEC='/bin/httpd' '-f'"));
 * ```
 *
 * @module
 */
import { BOOT_CONFIG_PATH, type BootConfig, type EarlyWorkload } from "../schema/mod.ts";
import { writeCpio } from "./cpio.ts";
import { BOOT_ENV_PATH } from "./initramfs.ts";

/** Stage-0 settings written to {@linkcode BOOT_ENV_PATH}. */
export interface BootEnv {
  init: "kestrel" | "custom" | "none";
  /** Program and arguments for `custom`/`none`. */
  exec?: readonly string[];
  /**
   * For `kestrel`: the workload stage 0 starts before kestrel runs (kestrel adopts it); absent:
   * kestrel starts it.
   */
  early?: EarlyWorkload;
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The text of {@linkcode BOOT_ENV_PATH}: shell assignments, every value single-quoted. */
export function bootEnvText(config: BootConfig, env: BootEnv): string {
  const vars: Array<[string, string]> = [
    ["VOLANT_INIT", env.init],
    ["VOLANT_EXEC", (env.exec ?? []).map(shellQuote).join(" ")],
    ["VOLANT_HOSTNAME", config.hostname],
    ["VOLANT_IP", config.network?.ip ?? ""],
    ["VOLANT_PREFIX", String(config.network?.prefix ?? "")],
    ["VOLANT_GATEWAY", config.network?.gateway ?? ""],
  ];
  const early = env.init === "kestrel" ? env.early : undefined;
  if (early !== undefined) {
    vars.push(
      ["VOLANT_EARLY_EXEC", early.argv.map(shellQuote).join(" ")],
      [
        "VOLANT_EARLY_ENV",
        Object.entries(early.env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(" "),
      ],
      ["VOLANT_EARLY_DIR", early.workdir],
      ["VOLANT_EARLY_UID", early.uid === undefined ? "" : String(early.uid)],
      ["VOLANT_EARLY_GID", early.gid === undefined ? "" : String(early.gid)],
    );
  }
  return vars.map(([k, v]) => `${k}=${shellQuote(v)}\n`).join("");
}

/** The per-VM archive with the boot config and the stage-0 settings. */
export function bootArchive(config: BootConfig, env: BootEnv): Uint8Array {
  const encoder = new TextEncoder();
  return writeCpio([
    { type: "dir", path: "volant", mode: 0o755 },
    {
      type: "file",
      path: BOOT_CONFIG_PATH.slice(1),
      data: encoder.encode(JSON.stringify(config)),
      mode: 0o600,
    },
    {
      type: "file",
      path: BOOT_ENV_PATH.slice(1),
      data: encoder.encode(bootEnvText(config, env)),
      mode: 0o600,
    },
  ]);
}

async function appendFile(out: Deno.FsFile, path: string): Promise<number> {
  using src = await Deno.open(path, { read: true });
  let n = 0;
  for await (const chunk of src.readable) {
    await out.write(chunk);
    n += chunk.length;
  }
  return n;
}

async function pad4(out: Deno.FsFile, written: number): Promise<number> {
  const extra = (4 - (written % 4)) % 4;
  if (extra > 0) await out.write(new Uint8Array(extra));
  return written + extra;
}

/**
 * Writes `out` (mode 0600): `shared`, then `plugin` when given, then the boot archive, each
 * padded to 4 bytes. Replaces `out` atomically.
 */
export async function writeBootInitramfs(
  out: string,
  parts: { shared: string; plugin?: string; config: BootConfig; env: BootEnv },
): Promise<void> {
  const tmp = `${out}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    let n = await pad4(file, await appendFile(file, parts.shared));
    if (parts.plugin) n = await pad4(file, n + await appendFile(file, parts.plugin));
    await file.write(bootArchive(parts.config, parts.env));
  } catch (err) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  file.close();
  await Deno.rename(tmp, out);
}
