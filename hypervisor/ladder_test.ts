import { deepEqual, equal, ok } from "node:assert/strict";
import { stopLadder } from "./ladder.ts";
import { exitStatus } from "./process/testing.ts";
import { type DetachedProcess, isAlive, killAndWait, spawnDetached } from "./process/mod.ts";

/** Runs `fn` against a detached `sleep` (optionally one that ignores SIGTERM), then kills it. */
async function withSleeper(
  ignoreTerm: boolean,
  fn: (p: DetachedProcess) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-ladder-" });
  const sleep = await Deno.realPath("/bin/sleep");
  const p = await spawnDetached({
    argv: ignoreTerm ? ["/bin/sh", "-c", `trap '' TERM; exec ${sleep} 300`] : [sleep, "300"],
    exe: sleep,
    log: `${dir}/log`,
  });
  try {
    await fn(p);
  } finally {
    await killAndWait(p.pid, p.startTime);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("stopLadder() ends at the graceful step when the power-off request works", async () => {
  await withSleeper(true, async (p) => {
    let asked = 0;
    const result = await stopLadder(p.pid, p.startTime, {
      gracefulMs: 10_000,
      termMs: 10_000,
      // The "guest" powers off: the process exits on its own.
      requestPowerOff: () => {
        asked++;
        Deno.kill(p.pid, "SIGKILL");
        return Promise.resolve(true);
      },
    });
    deepEqual(result, { via: "graceful" });
    equal(asked, 1);
  });
});

Deno.test("stopLadder() falls through to SIGTERM", async () => {
  for (
    const requestPowerOff of [
      () => Promise.resolve(true), // asked, but the guest ignores it
      () => Promise.resolve(false), // nobody to ask (guest not running)
      () => Promise.reject(new Error("QMP is gone")),
      undefined,
    ]
  ) {
    await withSleeper(false, async (p) => {
      const result = await stopLadder(p.pid, p.startTime, {
        gracefulMs: 300,
        termMs: 10_000,
        requestPowerOff,
      });
      deepEqual(result, { via: "sigterm" });
      ok(!(await isAlive(p.pid, p.startTime)));
      equal((await exitStatus(p)).signal, "SIGTERM");
    });
  }
});

Deno.test("stopLadder() skips the power button when gracefulMs is 0", async () => {
  await withSleeper(false, async (p) => {
    let asked = false;
    const result = await stopLadder(p.pid, p.startTime, {
      gracefulMs: 0,
      termMs: 10_000,
      requestPowerOff: () => Promise.resolve(asked = true),
    });
    deepEqual(result, { via: "sigterm" });
    equal(asked, false);
  });
});

Deno.test("stopLadder() uses SIGKILL on a VMM that ignores SIGTERM", async () => {
  await withSleeper(true, async (p) => {
    const result = await stopLadder(p.pid, p.startTime, { gracefulMs: 0, termMs: 300 });
    deepEqual(result, { via: "sigkill" });
    equal((await exitStatus(p)).signal, "SIGKILL");
  });
});

Deno.test("stopLadder() reports a process that is already gone", async () => {
  await withSleeper(false, async (p) => {
    await killAndWait(p.pid, p.startTime);
    let asked = false;
    const result = await stopLadder(p.pid, p.startTime, {
      gracefulMs: 1_000,
      termMs: 1_000,
      requestPowerOff: () => Promise.resolve(asked = true),
    });
    deepEqual(result, { via: "already-exited" });
    equal(asked, false);
  });
});

Deno.test("stopLadder() asks the VMM to exit before SIGTERM; its exit counts as sigterm", async () => {
  await withSleeper(true, async (p) => {
    const steps: string[] = [];
    const result = await stopLadder(p.pid, p.startTime, {
      gracefulMs: 300,
      termMs: 10_000,
      requestPowerOff: () => Promise.resolve(steps.push("power-off") > 0),
      // The VMM exits on its own when asked (SIGTERM is ignored, so it was not that).
      requestExit: () => {
        steps.push("exit");
        Deno.kill(p.pid, "SIGKILL");
        return Promise.resolve();
      },
    });
    deepEqual(result, { via: "sigterm" });
    deepEqual(steps, ["power-off", "exit"]);
    equal((await exitStatus(p)).signal, "SIGKILL");
  });
});

Deno.test("stopLadder() signals a VMM that cannot be asked to exit or ignores it", async () => {
  for (const requestExit of [() => Promise.reject(new Error("no API")), () => Promise.resolve()]) {
    await withSleeper(false, async (p) => {
      const result = await stopLadder(p.pid, p.startTime, {
        gracefulMs: 0,
        termMs: 300,
        requestExit,
      });
      deepEqual(result, { via: "sigterm" });
      equal((await exitStatus(p)).signal, "SIGTERM");
    });
  }
});
