import { equal, match, ok } from "node:assert/strict";
import { captureIo } from "./testing.ts";
import { SPINNER_FRAMES, startProgress } from "./progress.ts";

Deno.test("startProgress() prints plain lines when stderr is not a terminal", () => {
  const io = captureIo();
  const p = startProgress(io, "Creating web");
  p.update("Waiting for web to be running");
  p.stop();
  p.stop();
  equal(io.stderr(), "Creating web…\nWaiting for web to be running…\n");
  equal(io.stdout(), "");
});

Deno.test("startProgress() prints nothing when quiet", () => {
  const io = captureIo({ errIsTerminal: true });
  const p = startProgress(io, "Creating web", { quiet: true });
  p.update("x");
  p.stop();
  equal(io.stderr(), "");
});

Deno.test("startProgress() animates a spinner with elapsed time on a terminal, then clears it", async () => {
  const io = captureIo({ errIsTerminal: true });
  const p = startProgress(io, "Booting web", { intervalMs: 10 });
  await new Promise((resolve) => setTimeout(resolve, 80));
  p.update("Waiting");
  p.stop();
  const frames = io.stderr().split("\r\x1b[2K");
  equal(frames.shift(), "", "every frame starts by clearing the line");
  equal(frames.pop(), "", "stop() clears the line");
  ok(frames.length >= 4, `redrawn while running (${frames.length} frames)`);
  for (const [i, frame] of frames.entries()) {
    match(frame, /^\S (Booting web|Waiting)… \d+\.\ds$/);
    equal(frame[0], SPINNER_FRAMES[i % SPINNER_FRAMES.length]);
  }
  match(frames.at(-1)!, /Waiting/);
  const length = io.stderr().length;
  await new Promise((resolve) => setTimeout(resolve, 30));
  equal(io.stderr().length, length, "nothing is drawn after stop()");
});
