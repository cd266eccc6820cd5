import { equal, match, ok, throws } from "node:assert/strict";
import { TOKEN_PATTERN, VolantError } from "../../schema/mod.ts";
import { openStore } from "../store/mod.ts";
import { TokenService } from "./tokens.ts";

async function withTokens(fn: (tokens: TokenService, clock: { t: number }) => void) {
  const dir = await Deno.makeTempDir({ prefix: "volant-tokens-" });
  const store = openStore(`${dir}/volant.db`);
  const clock = { t: Date.parse("2026-01-01T00:00:00Z") };
  try {
    fn(new TokenService({ store: store.tokens, now: () => clock.t }), clock);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    ok(err instanceof VolantError, String(err));
    return `${err.code}: ${err.message}`;
  }
  return "no error";
}

Deno.test("tokens: random, shown once, hashed, scoped, revoked for good", () =>
  withTokens((tokens, clock) => {
    const a = tokens.create({ name: "ci" });
    equal(a.scope, "read", "read is the default scope");
    match(a.token, TOKEN_PATTERN);
    ok(a.token.startsWith(`volant_${a.id}_`));
    const b = tokens.create({ name: "ops", scope: "admin" });
    ok(a.token !== b.token && a.id !== b.id);
    equal(tokens.authenticate(`Bearer ${b.token}`).scope, "admin");
    equal(tokens.authenticate(`bearer  ${a.token} `).name, "ci");
    match(code(() => tokens.create({ name: "ci" })), /^already_exists: A token named ci/);
    match(code(() => tokens.create({ name: "bad name" })), /^invalid_argument: .*name/);
    match(code(() => tokens.create({ name: "x", scope: "root" })), /^invalid_argument: .*scope/);
    match(code(() => tokens.create({ name: "x", extra: 1 })), /extra: unknown field/);
    equal(tokens.activeCount(), 2);

    // last_used_at: written on use, at most once a minute.
    const first = tokens.authenticate(`Bearer ${a.token}`).last_used_at;
    clock.t += 30_000;
    equal(tokens.authenticate(`Bearer ${a.token}`).last_used_at, first);
    clock.t += 31_000;
    ok(tokens.authenticate(`Bearer ${a.token}`).last_used_at !== first);

    for (const header of [null, "", "Basic x", `Bearer ${a.token}x`, "Bearer volant_x_y"]) {
      match(code(() => tokens.authenticate(header)), /^unauthenticated: /, String(header));
    }
    const revoked = tokens.revoke("ci");
    ok(revoked.revoked_at !== null);
    match(code(() => tokens.authenticate(`Bearer ${a.token}`)), /ci \(.*\) was revoked at/);
    equal(tokens.revoke(a.id).revoked_at, revoked.revoked_at, "revoking again changes nothing");
    match(code(() => tokens.revoke("ci")), /^not_found: No token named ci/);
    equal(tokens.activeCount(), 1);
    equal(tokens.list().length, 1);
    equal(tokens.list(true).length, 2);
    equal(tokens.create({ name: "ci" }).name, "ci", "a revoked token's name is free again");
    throws(() => tokens.revoke("nope"), /No token named nope/);
  }));
