/**
 * The image store's record bookkeeping: finding records by reference, digest or digest prefix,
 * placing a new record (a replaced image stays reachable by digest), names for imported
 * images, and small file helpers.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import type { ImageRecord } from "./image_index.ts";
import { parseImageRef, parseImageSource, repositoryName } from "./reference.ts";

/** Puts `record` in place of the record with its reference; a replaced image stays reachable by digest. */
export function place(records: ImageRecord[], record: ImageRecord): ImageRecord[] {
  const old = records.find((r) => r.ref === record.ref);
  const rest = records.filter((r) => r.ref !== record.ref);
  if (
    old !== undefined && old.digest !== record.digest && !rest.some((r) => r.digest === old.digest)
  ) {
    rest.push({ ...old, ref: `${repositoryName(parseImageRef(old.ref))}@${old.digest}` });
  }
  rest.push(record);
  return rest;
}

const HEX_QUERY = /^(?:sha256:)?([0-9a-f]{12,64})$/;

/** The records `query` names: by digest (or unique hex prefix), else by reference. */
export function matchRecords(records: ImageRecord[], query: string): ImageRecord[] {
  const hex = HEX_QUERY.exec(query);
  if (hex !== null) {
    const found = records.filter((r) => r.digest.slice(7).startsWith(hex[1]!));
    const digests = new Set(found.map((r) => r.digest));
    if (digests.size > 1) {
      throw new VolantError(
        "invalid_argument",
        `Digest prefix ${query} is ambiguous: it matches ${[...digests].join(", ")}`,
        { query },
      );
    }
    if (found.length > 0 || query.startsWith("sha256:")) return found;
  }
  let source;
  try {
    source = parseImageSource(query);
  } catch (e) {
    if (hex !== null) return [];
    throw e;
  }
  if (source.kind !== "registry") {
    throw new VolantError(
      "invalid_argument",
      `${query} names a local source, not a stored image: an image imported from it is stored ` +
        "under the reference the import printed (see the image list), or find it by its digest",
      { field: "image", value: query },
    );
  }
  const ref = source.ref;
  const exact = records.filter((r) => r.ref === ref.canonical);
  if (exact.length > 0 || ref.digest === undefined) return exact;
  const repo = repositoryName(ref);
  return records.filter((r) =>
    r.digest === ref.digest && repositoryName(parseImageRef(r.ref)) === repo
  );
}

/** The `not_found` error for an image that is not stored. */
export function notStored(query: string): VolantError {
  return new VolantError(
    "not_found",
    `Image ${query} is not in the image store; pull or import it first`,
    { image: query },
  );
}

/**
 * The reference an imported image is recorded under: `name` when given (validated), else
 * `localhost/<last path component, made a valid name>:<tag or latest>`.
 */
export function localRef(name: string | null, path: string, tag: string | null): string {
  if (name !== null) return parseImageRef(name).canonical;
  const base = path.replace(/\/+$/, "").split("/").pop() ?? "";
  const repo = base.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+|[._-]+$/g, "") ||
    "image";
  const validTag = tag !== null && /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag) ? tag : "latest";
  return parseImageRef(`localhost/${repo}:${validTag}`).canonical;
}

/** Whether something is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The names in `dir` (none when it does not exist). */
export async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}
