/**
 * JSON answers of kestrel's API: bodies, errors as `{code, message, details}` (the
 * `ErrorBody` shape) with the status of their code, and a bounded JSON body reader.
 *
 * @module
 */
import { ERROR_STATUS, VolantError } from "../../schema/error.ts";

/** Largest request body kestrel reads, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * import { json } from "./respond.ts";
 * console.assert(json({ ok: true }, 201).status === 201);
 * ```
 */
export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return Response.json(body, { status, headers });
}

/**
 * Any thrown value as a JSON error response: a {@linkcode VolantError} with its code's status,
 * anything else as `internal` (500).
 *
 * @example
 * ```ts
 * import { VolantError } from "../../schema/error.ts";
 * import { errorResponse } from "./respond.ts";
 * console.assert(errorResponse(new VolantError("not_found", "no such route")).status === 404);
 * ```
 */
export function errorResponse(err: unknown, headers: HeadersInit = {}): Response {
  const error = err instanceof VolantError
    ? err
    : new VolantError("internal", `Internal error: ${err instanceof Error ? err.message : err}`);
  return json(error.toJSON(), ERROR_STATUS[error.code], headers);
}

async function readCapped(req: Request, max: number): Promise<string> {
  if (req.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new VolantError(
        "invalid_argument",
        `Request body is larger than ${max} bytes`,
        { max },
      );
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** One zod issue, as much of it as kestrel words (zod/mini carries no English messages). */
interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  expected?: string;
  keys?: string[];
  minimum?: number | bigint;
  maximum?: number | bigint;
  values?: unknown[];
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let at = data;
  for (const key of path) {
    if (at === null || typeof at !== "object") return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function wordIssue(issue: Issue, data: unknown): Array<{ field: string; message: string }> {
  const field = (path: readonly PropertyKey[]) => path.map(String).join(".") || "(body)";
  if (issue.code === "unrecognized_keys") {
    return (issue.keys ?? []).map((key) => ({
      field: field([...issue.path, key]),
      message: "unknown field",
    }));
  }
  let message = issue.message;
  if (message === "Invalid input" || message === "") {
    if (issue.code === "invalid_type") {
      message = valueAt(data, issue.path) === undefined
        ? `required (${issue.expected})`
        : `expected ${issue.expected === "int" ? "an integer" : issue.expected}`;
    } else if (issue.code === "too_small") message = `must be at least ${issue.minimum}`;
    else if (issue.code === "too_big") message = `must be at most ${issue.maximum}`;
    else if (issue.code === "invalid_value") {
      message = `must be one of ${(issue.values ?? []).map((v) => JSON.stringify(v)).join(", ")}`;
    }
  }
  return [{ field: field(issue.path), message }];
}

/**
 * A failed parse of `data` as an `invalid_argument` {@linkcode VolantError} that names each
 * field and says what is wrong (`Invalid input: url: required (string); extra: unknown
 * field`): zod/mini, unlike classic zod, has no English messages of its own.
 *
 * @example
 * ```ts
 * import * as z from "zod/mini";
 * import { invalidBody } from "./respond.ts";
 * const r = z.object({ url: z.string() }).safeParse({});
 * if (!r.success) console.assert(invalidBody(r.error, {}).message === "Invalid input: url: required (string)");
 * ```
 */
export function invalidBody(error: { issues: readonly object[] }, data: unknown): VolantError {
  const issues = error.issues.flatMap((issue) => wordIssue(issue as Issue, data));
  const text = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
  return new VolantError("invalid_argument", `Invalid input: ${text}`, { issues });
}

/** A schema `parseJsonBody` can check: anything with zod's `safeParse`. */
export interface BodySchema<T> {
  /** zod (mini) `safeParse`. */
  safeParse(
    data: unknown,
  ): { success: true; data: T } | {
    success: false;
    error: { issues: readonly object[] };
  };
}

/**
 * Reads a request's JSON body (at most {@linkcode MAX_BODY_BYTES}) and checks it with
 * `schema`; throws `invalid_argument` naming the failing field (see {@linkcode invalidBody}),
 * or saying the body is missing or not JSON.
 *
 * @example
 * ```ts
 * import * as z from "zod/mini";
 * import { parseJsonBody } from "./respond.ts";
 * const req = new Request("http://x/", { method: "POST", body: '{"n":1}' });
 * console.assert((await parseJsonBody(req, z.object({ n: z.number() }))).n === 1);
 * ```
 */
export async function parseJsonBody<T>(
  req: Request,
  schema: BodySchema<T>,
  max = MAX_BODY_BYTES,
): Promise<T> {
  const text = await readCapped(req, max);
  if (text.trim() === "") {
    throw new VolantError("invalid_argument", "Request body is missing; send a JSON object");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new VolantError(
      "invalid_argument",
      `Request body is not valid JSON: ${(err as Error).message}`,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw invalidBody(parsed.error, raw);
  return parsed.data;
}
