/** Reading registry responses: bounded bodies and the registry's `{errors:[…]}` messages. @module */
import { VolantError } from "../schema/error.ts";

/** The registry's `{errors:[{code,message}]}` as text, or the start of a plain body. */
export async function registryErrors(res: Response): Promise<{ codes: string[]; text: string }> {
  const raw = (await res.text().catch(() => "")).trim();
  try {
    const json = JSON.parse(raw) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(json.errors)) {
      const codes = json.errors.map((e) => String(e.code ?? ""));
      const text = json.errors.map((e) =>
        [e.code, e.message].filter((x) => x !== undefined).join(": ")
      ).join("; ");
      return { codes, text };
    }
  } catch {
    // Not JSON: show the start of it.
  }
  return { codes: [], text: raw.slice(0, 200) };
}

/** The registry's error text of `res`. */
export async function errorText(res: Response): Promise<string> {
  return (await registryErrors(res)).text;
}

/** The body of `res`, failing (`artifact_unavailable`) once it exceeds `limit` bytes. */
export async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? ReadableStream.from([])) {
    size += chunk.length;
    if (size > limit) {
      await res.body?.cancel().catch(() => {});
      throw new VolantError("artifact_unavailable", `${what} is larger than ${limit} bytes`, {
        limit,
      });
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
