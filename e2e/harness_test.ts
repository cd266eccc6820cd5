/**
 * The e2e harness ends a daemon that ignores SIGTERM: a stand-in volantd (a tiny Deno program
 * that answers `/healthz` on the socket and traps SIGTERM) is killed with SIGKILL by PID after
 * the grace period, by `stop()` and by `dispose()`, and nothing is left behind.
 */
import { equal, ok } from "node:assert/strict";
import { CAN_NETNS, NETNS_SKIP } from "../net/testing.ts";
import { ip, pidAlive, startDaemon } from "./harness.ts";

/** Serves `/healthz` where the harness looks for volantd; logs SIGTERM and keeps running. */
const STAND_IN = `
const args = Deno.args;
const config = await Deno.readTextFile(args[args.indexOf("--config") + 1]);
const runtime = /^runtime_dir: (.*)$/m.exec(config)[1];
await Deno.mkdir(runtime, { recursive: true });
Deno.addSignalListener("SIGTERM", () => console.error("stand-in: SIGTERM ignored"));
Deno.serve({ path: runtime + "/volantd.sock", onListen() {} }, () => new Response("ok"));
`;

async function standIn(): Promise<{ script: string; dispose(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "volant-harness-test-" });
  const script = `${dir}/stand_in.js`;
  await Deno.writeTextFile(script, STAND_IN);
  return { script, dispose: () => Deno.remove(dir, { recursive: true }) };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const GRACE_MS = 300;

function harnessTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: CAN_NETNS ? name : `${name} (skipped: ${NETNS_SKIP})`,
    ignore: !CAN_NETNS,
    fn,
  });
}

harnessTest(
  "stop() kills a daemon that ignores SIGTERM with SIGKILL after the grace period",
  async () => {
    const fake = await standIn();
    try {
      const daemon = await startDaemon({
        guestDir: "/nonexistent",
        command: [Deno.execPath(), "run", "-A", fake.script],
        stopGraceMs: GRACE_MS,
      });
      try {
        const pid = daemon.pid()!;
        ok(await pidAlive(pid));
        const t0 = performance.now();
        const code = await daemon.stop();
        const ms = performance.now() - t0;
        equal(code, 128 + 9, "killed by SIGKILL");
        ok(ms >= GRACE_MS, `waited the grace period first (${ms.toFixed(0)} ms)`);
        ok(ms < GRACE_MS + 5_000, `then killed it promptly (${ms.toFixed(0)} ms)`);
        equal(await pidAlive(pid), false);
        ok(daemon.logs().includes("stand-in: SIGTERM ignored"), daemon.logs().join("\n"));
        ok(
          daemon.logs().some((l) => l.includes("killed it with SIGKILL")),
          daemon.logs().join("\n"),
        );
      } finally {
        await daemon.dispose();
      }
    } finally {
      await fake.dispose();
    }
  },
);

harnessTest(
  "dispose() ends a daemon that ignores SIGTERM and removes its namespace and dir",
  async () => {
    const fake = await standIn();
    try {
      const daemon = await startDaemon({
        guestDir: "/nonexistent",
        command: [Deno.execPath(), "run", "-A", fake.script],
        stopGraceMs: GRACE_MS,
      });
      const pid = daemon.pid()!;
      // As after a test that failed midway: no stop() first.
      await daemon.dispose();
      equal(await pidAlive(pid), false);
      equal(await exists(daemon.dir), false, "temp dir removed");
      equal((await ip("netns", "list")).includes(daemon.ns), false, "namespace removed");
    } finally {
      await fake.dispose();
    }
  },
);
