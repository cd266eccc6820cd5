/** Byte helpers shared by the daemon's readers. @module */

/**
 * Joins chunks into one array.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./_bytes.ts";
 * console.assert(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]).length === 3);
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
