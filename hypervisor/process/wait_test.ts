import { equal, ok } from "node:assert/strict";
import { childStatus, readProcStat, readStartTime, signalProcess, waitGone } from "./mod.ts";
import { killMarked, marker } from "./testing.ts";

Deno.test("waitGone() polls /proc for a process that is not our child", async () => {
  const mark = marker();
  // sh starts sleep in the background and exits: the sleeper is reparented away from us.
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", `sleep ${mark} >/dev/null 2>&1 & echo $!`],
    stdout: "piped",
  }).output();
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  try {
    const start = await readStartTime(pid);
    ok(start !== null);
    ok((await readProcStat(pid))?.ppid !== Deno.pid, "not our child");
    equal(childStatus(pid, start!), undefined);
    equal(await waitGone(pid, start!, { timeoutMs: 300, pollMs: 50 }), false);
    const gone = waitGone(pid, start!, { pollMs: 50 });
    ok(await signalProcess(pid, start!, "SIGTERM"));
    equal(await gone, true);
  } finally {
    await killMarked(mark);
  }
});
