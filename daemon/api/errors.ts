/** Rendering errors as `{code, message, details}` with the status from `ERROR_STATUS`. @module */
import { ERROR_STATUS, type ErrorBody, VolantError } from "../../schema/mod.ts";

/** Any thrown value as a VolantError (unknown errors become `internal`). */
export function toVolantError(err: unknown): VolantError {
  if (err instanceof VolantError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new VolantError("internal", `Internal error: ${message}`);
}

/**
 * The HTTP status and body for an error.
 *
 * @example
 * ```ts
 * import { VolantError } from "../../schema/mod.ts";
 * import { errorResponse } from "./errors.ts";
 * const { status } = errorResponse(new VolantError("not_found", "VM web does not exist"));
 * console.assert(status === 404);
 * ```
 */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  const error = toVolantError(err);
  return { status: ERROR_STATUS[error.code], body: error.toJSON() };
}
