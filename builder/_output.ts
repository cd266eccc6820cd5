/**
 * Writing a build's outputs as one set: each output goes to a temporary file in the output
 * directory first, then all are renamed into place; on any failure the temporaries, the files
 * already renamed and a directory this build created are removed, so a failed build leaves
 * nothing behind. Internal to the builder.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { createHash } from "node:crypto";
import { VolantError } from "../schema/mod.ts";

/** One output: its final path and how to write it to a (new) temporary path. */
export interface Output {
  /** Where it ends up. */
  path: string;
  /** Writes the output's content to `temp` (which does not exist yet). Called in order. */
  write(temp: string): Promise<void>;
}

/** An output holding `data`. */
export function bytesOutput(path: string, data: Uint8Array): Output {
  return {
    path,
    write: (temp) => Deno.writeFile(temp, data, { createNew: true, mode: 0o644 }),
  };
}

/** The `sha256:<hex>` of `data`. */
export function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** The first ancestor of `dir` (or `dir`) that does not exist yet; `undefined` if it exists. */
async function firstMissing(dir: string): Promise<string | undefined> {
  let missing: string | undefined;
  for (let at = dir;; at = dirname(at)) {
    try {
      await Deno.stat(at);
      return missing;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) return missing;
      missing = at;
      if (dirname(at) === at) return missing;
    }
  }
}

async function removeQuietly(path: string, recursive = false): Promise<void> {
  try {
    await Deno.remove(path, { recursive });
  } catch {
    // already gone, or never written
  }
}

/**
 * Writes `outputs` into `dir` atomically as a set: temporary files (`.<name>.<random>.tmp`)
 * first, then renames; on any failure the temporaries, the renamed files and a directory this
 * call created are removed. Errors are `invalid_argument` naming `field` of the config `file`.
 */
export async function writeOutputs(
  dir: string,
  outputs: readonly Output[],
  field: string,
  file: string,
): Promise<void> {
  const fail = (message: string, cause?: unknown) =>
    new VolantError("invalid_argument", `${file}: ${field}: ${message}`, { file, field, dir }, {
      cause,
    });
  let created: string | undefined;
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw fail(`${dir} exists and is not a directory`);
  } catch (err) {
    if (err instanceof VolantError) throw err;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw fail(`cannot use ${dir}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    created = await firstMissing(dir);
  }
  const suffix = crypto.randomUUID().slice(0, 8);
  const temps = outputs.map((o) => `${dirname(o.path)}/.${basename(o.path)}.${suffix}.tmp`);
  const renamed: string[] = [];
  try {
    if (created !== undefined) await Deno.mkdir(dir, { recursive: true });
    for (const [i, output] of outputs.entries()) await output.write(temps[i]!);
    for (const [i, output] of outputs.entries()) {
      await Deno.rename(temps[i]!, output.path);
      renamed.push(output.path);
    }
  } catch (err) {
    for (const path of [...temps, ...renamed]) await removeQuietly(path);
    if (created !== undefined) await removeQuietly(created, true);
    const reason = err instanceof Error ? err.message : String(err);
    throw fail(`cannot write the outputs to ${dir}: ${reason}`, err);
  }
}
