import { equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import {
  childStatus,
  isAlive,
  killAndWait,
  logTail,
  readProcStat,
  signalProcess,
  spawnDetached,
  waitGone,
} from "./mod.ts";
import { exitStatus, killMarked, marker } from "./testing.ts";

Deno.test("spawnDetached() runs the binary itself in a new session with stdio redirected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-proc-" });
  const log = `${dir}/vmm.log`;
  const mark = marker();
  try {
    await Deno.writeTextFile(log, "earlier run\n");
    const vmm = await spawnDetached({ argv: ["/bin/sleep", mark], log });
    try {
      equal(vmm.logOffset, "earlier run\n".length);
      equal(await Deno.readLink(`/proc/${vmm.pid}/exe`), await Deno.realPath("/bin/sleep"));
      const stat = await readProcStat(vmm.pid);
      equal(stat?.session, vmm.pid, "a session leader of its own");
      equal(stat?.ppid, Deno.pid, "our child, so its exit status is ours to reap");
      equal(stat?.startTime, vmm.startTime);
      equal(await Deno.readLink(`/proc/${vmm.pid}/fd/0`), "/dev/null");
      equal(await Deno.readLink(`/proc/${vmm.pid}/fd/1`), log);
      equal(await Deno.readLink(`/proc/${vmm.pid}/fd/2`), log);
      ok(childStatus(vmm.pid, vmm.startTime) !== undefined);
      equal(childStatus(vmm.pid, vmm.startTime + 1), undefined);
      equal(await waitGone(vmm.pid, vmm.startTime, { timeoutMs: 200 }), false);
      equal(await signalProcess(vmm.pid, vmm.startTime + 1, "SIGKILL"), false, "wrong start time");
      ok(await isAlive(vmm.pid, vmm.startTime), "nothing was sent to it");
    } finally {
      ok(await killAndWait(vmm.pid, vmm.startTime));
    }
    const status = await exitStatus(vmm);
    equal(status.signal, "SIGKILL");
    equal(childStatus(vmm.pid, vmm.startTime), undefined, "forgotten once reaped");
    equal(await readProcStat(vmm.pid).then((s) => s?.startTime === vmm.startTime), false);
    equal(await Deno.readTextFile(log), "earlier run\n", "the log was appended to, not truncated");
  } finally {
    await killMarked(mark);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spawnDetached() reports a VMM that exits at once with the tail of its log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-proc-" });
  try {
    const script = `${dir}/vmm`;
    await Deno.writeTextFile(script, "#!/bin/sh\necho 'vmm: -drive: bad option' >&2\nexit 3\n");
    await Deno.chmod(script, 0o755);
    await Deno.writeTextFile(`${dir}/vmm.log`, "old failure\n");
    await rejects(
      // An `exe` that never matches makes the wait end only through the exit.
      () => spawnDetached({ argv: [script], log: `${dir}/vmm.log`, exe: "/never", label: "vmm" }),
      (e: VolantError) => {
        equal(e.code, "vmm_failed");
        equal(e.message, "vmm exited with code 3 at once: vmm: -drive: bad option");
        return true;
      },
    );
    await rejects(
      () => spawnDetached({ argv: [`${dir}/missing`], log: `${dir}/vmm.log` }),
      (e: VolantError) => e.code === "vmm_failed" && /missing/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spawnDetached() detects a launch prefix that forks instead of exec'ing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-proc-" });
  const mark = marker();
  try {
    await rejects(
      () =>
        spawnDetached({
          argv: ["/bin/sleep", mark],
          log: `${dir}/vmm.log`,
          prefix: ["/bin/sh", "-c", '"$@" & wait', "fork"],
          execTimeoutMs: 300,
        }),
      (e: VolantError) => {
        equal(e.code, "vmm_failed");
        match(e.message, /forked instead of exec'ing sleep/);
        return true;
      },
    );
  } finally {
    await killMarked(mark);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logTail() returns the last lines written after an offset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-proc-" });
  try {
    const path = `${dir}/log`;
    await Deno.writeTextFile(path, "old 1\nold 2\nnew 1\n\nnew 2\nnew 3\n");
    equal(await logTail(path, 12, 10), "new 1\nnew 2\nnew 3");
    equal(await logTail(path, 12, 2), "new 2\nnew 3");
    equal(await logTail(path, 10_000, 5), "");
    equal(await logTail(`${dir}/missing`, 0, 5), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
