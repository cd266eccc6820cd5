/**
 * kestrel's API is the daemon's alone: every request, `/healthz` included, must carry the VM's
 * secret from the boot config as `Authorization: Bearer <secret>`. Anything else is a 401 with
 * `WWW-Authenticate: Bearer realm="kestrel"` (so the daemon can tell kestrel's refusal from a
 * workload's own 401), and the comparison takes the same time wherever the first wrong byte is.
 * Without a secret (an old or hand-made boot config) every request is refused.
 *
 * @module
 */
import { AGENT_AUTH_REALM, AGENT_AUTH_SCHEME } from "../../schema/agent.ts";
import { VolantError } from "../../schema/error.ts";
import { errorResponse } from "./respond.ts";

const encoder = new TextEncoder();

/**
 * Whether `given` equals `expected`, in a time that depends only on `expected`'s length.
 *
 * @example
 * ```ts
 * import { constantTimeEqual } from "./auth.ts";
 * console.assert(constantTimeEqual("abc", "abc") && !constantTimeEqual("abd", "abc"));
 * console.assert(!constantTimeEqual("ab", "abc") && !constantTimeEqual("abcd", "abc"));
 * ```
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  const a = encoder.encode(given);
  const b = encoder.encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}

/** The bearer token of `Authorization: Bearer <token>`, or `undefined`. */
function bearer(req: Request): string | undefined {
  const header = req.headers.get("authorization");
  if (header === null) return undefined;
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== AGENT_AUTH_SCHEME.toLowerCase()) {
    return undefined;
  }
  return header.slice(space + 1).trim();
}

function refuse(message: string): Response {
  return errorResponse(new VolantError("unauthenticated", message), {
    "www-authenticate": `${AGENT_AUTH_SCHEME} realm="${AGENT_AUTH_REALM}"`,
  });
}

/**
 * Wraps `handler` so that only requests carrying `secret` reach it; `undefined` refuses all.
 * `secret` may be a function, read on every request: a new secret (a clone's new identity)
 * applies from the next request on, and the old one is refused from then on.
 *
 * @example
 * ```ts
 * import { requireSecret } from "./auth.ts";
 * const secret = "k".repeat(43);
 * const handle = requireSecret(secret, () => new Response("ok"));
 * console.assert((await handle(new Request("http://kestrel/healthz"))).status === 401);
 * const auth = { authorization: `Bearer ${secret}` };
 * console.assert((await handle(new Request("http://kestrel/healthz", { headers: auth }))).status === 200);
 * ```
 */
export function requireSecret(
  secret: string | undefined | (() => string | undefined),
  handler: (req: Request) => Response | Promise<Response>,
): (req: Request) => Promise<Response> {
  const current = typeof secret === "function" ? secret : () => secret;
  return async (req) => {
    const expected = current();
    if (expected === undefined || expected === "") {
      await req.body?.cancel().catch(() => {});
      return refuse("kestrel has no secret in its boot config: it answers no request");
    }
    const token = bearer(req);
    if (token === undefined || !constantTimeEqual(token, expected)) {
      await req.body?.cancel().catch(() => {});
      return refuse(
        token === undefined
          ? `Missing credentials: send the VM's secret as Authorization: ${AGENT_AUTH_SCHEME} <secret>`
          : "Wrong credentials: this is not the VM's secret",
      );
    }
    return await handler(req);
  };
}
