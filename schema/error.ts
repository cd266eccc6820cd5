/**
 * Error values shared by daemon, CLI and agent: every failure carries a
 * machine-readable `code`, a human `message` and optional `details`.
 *
 * Written with `zod/mini` (like every schema kestrel uses): the guest parses its JavaScript
 * under emulation on every boot, and classic zod adds ~750 KB to that bundle.
 *
 * @module
 */
import * as z from "zod/mini";

/** Every error code the project emits. The REST API maps each to one HTTP status. */
export const ErrorCode = z.enum([
  "invalid_argument",
  "not_found",
  "already_exists",
  "invalid_state",
  "kernel_not_found",
  "hypervisor_unavailable",
  "vmm_failed",
  "timeout",
  "daemon_unreachable",
  "ip_pool_exhausted",
  "ip_unavailable",
  "network_error",
  "signature_rejected",
  "checksum_mismatch",
  "artifact_unavailable",
  "agent_unreachable",
  "workload_unavailable",
  "unsupported",
  "unauthenticated",
  "forbidden",
  "unsupported_media_type",
  "payload_too_large",
  "internal",
]);
/** One of {@linkcode ErrorCode}'s values. */
export type ErrorCode = z.infer<typeof ErrorCode>;

/** The one table from error code to HTTP status (the daemon's API and kestrel's). */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  invalid_state: 409,
  kernel_not_found: 422,
  hypervisor_unavailable: 503,
  vmm_failed: 502,
  timeout: 504,
  daemon_unreachable: 503,
  ip_pool_exhausted: 409,
  ip_unavailable: 409,
  network_error: 500,
  signature_rejected: 403,
  checksum_mismatch: 422,
  artifact_unavailable: 502,
  agent_unreachable: 502,
  workload_unavailable: 502,
  unsupported: 501,
  unauthenticated: 401,
  forbidden: 403,
  unsupported_media_type: 415,
  payload_too_large: 413,
  internal: 500,
};

/** The wire form of an error: `{code, message, details}`. */
export const ErrorBody = z.object({
  code: ErrorCode,
  message: z.string(),
  details: z.optional(z.record(z.string(), z.unknown())),
});
/** The wire form of an error. */
export type ErrorBody = z.infer<typeof ErrorBody>;

/**
 * An error with a code. Thrown inside a process, serialised as {@linkcode ErrorBody}
 * across process boundaries.
 *
 * @example Create and serialise
 * ```ts
 * import { VolantError } from "./error.ts";
 * const err = new VolantError("not_found", "VM web does not exist", { name: "web" });
 * console.assert(err.toJSON().code === "not_found");
 * ```
 */
export class VolantError extends Error {
  /** Machine-readable code. */
  readonly code: ErrorCode;
  /** Extra structured context (field names, paths, pids). */
  readonly details: Record<string, unknown> | undefined;

  /** Creates an error; `cause` keeps the underlying exception. */
  constructor(
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "VolantError";
    this.code = code;
    this.details = details;
  }

  /** The wire form. */
  toJSON(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  /** Rebuilds an error received over the wire. */
  static fromBody(body: ErrorBody): VolantError {
    return new VolantError(body.code, body.message, body.details);
  }
}

/**
 * Turns a zod error into an `invalid_argument` {@linkcode VolantError} whose message
 * names each failing field by its path.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { fromZodError } from "./error.ts";
 * const r = z.object({ n: z.number() }).safeParse({ n: "x" });
 * if (!r.success) console.assert(fromZodError(r.error).message.includes("n"));
 * ```
 */
export function fromZodError(error: z.core.$ZodError, prefix = ""): VolantError {
  const field = (path: readonly PropertyKey[]) =>
    [prefix, ...path.map(String)].filter((p) => p !== "").join(".") || "(body)";
  const issues = error.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ field: field([...issue.path, key]), message: "unknown field" }))
      : [{ field: field(issue.path), message: issue.message }]
  );
  const text = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
  return new VolantError("invalid_argument", `Invalid input: ${text}`, { issues });
}
