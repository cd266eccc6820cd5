import { deepEqual, equal, ok } from "node:assert/strict";
import { rotateLog, tailLines, waitForReadyLine } from "./_serial.ts";

const REPORT = {
  name: "web",
  kestrel_version: "1",
  uptime_ms: 5,
  mem_total_kb: 1,
  mem_available_kb: 1,
};

async function withFile(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/serial.log`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const never = new AbortController().signal;

Deno.test("the ready line is found after the offset, across partial writes and CRLF", () =>
  withFile(async (path) => {
    const old = `KESTREL_READY ${JSON.stringify({ ...REPORT, name: "old" })}\n`;
    await Deno.writeTextFile(path, old + "boot noise\r\n");
    const waiting = waitForReadyLine(path, old.length, {
      timeoutMs: 5_000,
      signal: never,
      pollMs: 5,
    });
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(path, "KESTREL_RE", { append: true });
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(path, `ADY ${JSON.stringify(REPORT)}\r\n`, { append: true });
    const result = await waiting;
    equal(result.kind, "ready");
    if (result.kind === "ready") deepEqual(result.report, REPORT);
  }));

Deno.test("a truncated log is read again from the start; bad JSON still counts as ready", () =>
  withFile(async (path) => {
    await Deno.writeTextFile(path, "x".repeat(1000) + "\n");
    const waiting = waitForReadyLine(path, 1001, { timeoutMs: 5_000, signal: never, pollMs: 5 });
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(path, "KESTREL_READY not-json\n");
    const result = await waiting;
    equal(result.kind, "ready");
    if (result.kind === "ready") equal(result.report, null);
  }));

Deno.test("timeout, abort, a spent deadline still reads once, and log tails", () =>
  withFile(async (path) => {
    equal(
      (await waitForReadyLine(path, 0, { timeoutMs: 30, signal: never, pollMs: 5 })).kind,
      "timeout",
    );
    const abort = new AbortController();
    const waiting = waitForReadyLine(path, 0, {
      timeoutMs: 5_000,
      signal: abort.signal,
      pollMs: 5,
    });
    abort.abort();
    equal((await waiting).kind, "aborted");
    await Deno.writeTextFile(path, `a\n\nb\r\nKESTREL_READY ${JSON.stringify(REPORT)}\n`);
    equal((await waitForReadyLine(path, 0, { timeoutMs: -10, signal: never })).kind, "ready");
    equal(await tailLines(path, 2), `b\nKESTREL_READY ${JSON.stringify(REPORT)}`);
    equal(await tailLines(`${path}.missing`), "");
  }));

Deno.test("rotateLog() keeps the tail in .1, truncates in place, and an appending writer goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-rotate-" });
  try {
    const path = `${dir}/serial.log`;
    // The VMM's descriptor: opened once, appending.
    using vmm = await Deno.open(path, { write: true, create: true, append: true });
    await vmm.write(new TextEncoder().encode("a".repeat(5000) + "TAIL"));
    equal(await rotateLog(path, 4096, 2), true);
    equal((await Deno.stat(path)).size, 0);
    const kept = await Deno.readTextFile(`${path}.1`);
    equal(kept.length, 4096);
    ok(kept.endsWith("TAIL"));
    await vmm.write(new TextEncoder().encode("next"));
    equal(await Deno.readTextFile(path), "next", "the writer appends at the new end");
    equal(await rotateLog(path, 4096, 2), false, "under the cap: nothing to do");
    // files = 1 keeps nothing.
    await vmm.write(new TextEncoder().encode("b".repeat(5000)));
    equal(await rotateLog(path, 4096, 1), true);
    equal((await Deno.stat(path)).size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
