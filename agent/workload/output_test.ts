import assert from "node:assert/strict";
import { ConsoleEcho, pumpLines } from "./output.ts";

function streamOf(chunks: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(typeof chunk === "string" ? enc.encode(chunk) : chunk);
      c.close();
    },
  });
}

async function lines(chunks: Array<string | Uint8Array>, max?: number) {
  const out: Array<[string, number]> = [];
  await pumpLines(streamOf(chunks), (l, n) => out.push([l, n]), max);
  return out;
}

Deno.test("pumpLines() joins lines split across chunks and strips CRLF", async () => {
  assert.deepEqual(await lines(["he", "llo\nwor", "ld\r\n\n", "tail"]), [
    ["hello", 5],
    ["world", 5],
    ["", 0],
    ["tail", 4],
  ]);
  assert.deepEqual(await lines([]), []);
});

Deno.test("pumpLines() cuts lines longer than the limit, and keeps multibyte text", async () => {
  assert.deepEqual((await lines(["abcdefghij\n"], 4)).map(([l]) => l), ["abcd", "efgh", "ij"]);
  assert.deepEqual((await lines(["abcd\nef"], 4)).map(([l]) => l), ["abcd", "ef"]);
  assert.deepEqual((await lines(["ab", "cd", "\n"], 4)).map(([l]) => l), ["abcd"]);
  const utf8 = new TextEncoder().encode("héllo ✓\n");
  assert.deepEqual(await lines([utf8.subarray(0, 2), utf8.subarray(2)]), [["héllo ✓", 10]]);
});

Deno.test("pumpLines() delivers what was read before a stream error", async () => {
  const out: string[] = [];
  const broken = new ReadableStream<Uint8Array>({
    pull(c) {
      if (out.length === 0) c.enqueue(new TextEncoder().encode("ok\npart"));
      else c.error(new Error("EPIPE"));
    },
  });
  await pumpLines(broken, (l) => out.push(l));
  assert.deepEqual(out, ["ok", "part"]);
});

Deno.test("ConsoleEcho drops lines a slow console cannot take and says how many", async () => {
  const written: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((r) => release = r);
  const sink = {
    async write(d: Uint8Array) {
      await gate;
      written.push(new TextDecoder().decode(d));
      return d.byteLength;
    },
  };
  const echo = new ConsoleEcho(sink, 20);
  echo.line("first line"); // 11 bytes, being written
  echo.line("second"); // 7 bytes: fits (18)
  echo.line("third!!"); // 8 more: over 20, dropped
  echo.line("fourth!"); // dropped
  assert.equal(echo.dropped, 2);
  release();
  await echo.flush();
  assert.equal(
    written.join(""),
    "first line\nsecond\nkestrel: 2 workload lines not echoed (console too slow)\n",
  );
});

Deno.test("ConsoleEcho survives a console that fails", async () => {
  const echo = new ConsoleEcho({ write: () => Promise.reject(new Error("EIO")) });
  echo.line("lost");
  await echo.flush();
  echo.line("still accepted");
  await echo.flush();
  assert.equal(echo.dropped, 0);
});
