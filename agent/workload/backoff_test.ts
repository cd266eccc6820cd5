import assert from "node:assert/strict";
import { RestartPolicy } from "../../schema/manifest.ts";
import { backoffDelay, decideRestart } from "./backoff.ts";

const policy = (p: "always" | "on-failure" | "never", max_retries = 3) =>
  RestartPolicy.parse({
    policy: p,
    max_retries,
    backoff: { initial_ms: 100, multiplier: 3, max_ms: 1000 },
  });

Deno.test("backoffDelay() grows by the multiplier up to max_ms", () => {
  const b = policy("always").backoff;
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => backoffDelay(b, n)), [100, 300, 900, 1000, 1000]);
  const flat = { initial_ms: 50, multiplier: 1, max_ms: 60_000 };
  assert.deepEqual([0, 5].map((n) => backoffDelay(flat, n)), [50, 50]);
});

Deno.test("decideRestart(): each policy on success and failure", () => {
  const fail = { success: false, ranMs: 10 };
  const ok = { success: true, ranMs: 10 };
  assert.deepEqual(decideRestart(policy("always"), ok, 0, 1000), {
    action: "restart",
    delayMs: 100,
    attempt: 1,
  });
  assert.equal(decideRestart(policy("on-failure"), ok, 0, 1000).action, "stay");
  assert.equal(decideRestart(policy("on-failure"), fail, 0, 1000).action, "restart");
  assert.equal(decideRestart(policy("never"), fail, 0, 1000).action, "stay");
  assert.equal(decideRestart(policy("never"), ok, 0, 1000).action, "stay");
});

Deno.test("decideRestart(): max_retries bounds a crash loop; a stable run resets it", () => {
  const fail = { success: false, ranMs: 10 };
  const p = policy("on-failure", 2);
  const second = decideRestart(p, fail, 1, 1000);
  assert.deepEqual(second, { action: "restart", delayMs: 300, attempt: 2 });
  const third = decideRestart(p, fail, 2, 1000);
  assert.equal(third.action, "give_up");
  assert.match(third.action === "give_up" ? third.reason : "", /restarted 2 times .*max_retries 2/);
  // The same failure after a run that lasted stableMs starts over from the first delay.
  assert.deepEqual(decideRestart(p, { success: false, ranMs: 1000 }, 2, 1000), {
    action: "restart",
    delayMs: 100,
    attempt: 1,
  });
  assert.equal(decideRestart(policy("always", 0), fail, 0, 1000).action, "give_up");
});
