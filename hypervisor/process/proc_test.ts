import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { isAlive, parseProcStat, readProcStat, readStartTime, waitGone } from "./mod.ts";
import { marker } from "./testing.ts";

Deno.test("parseProcStat() survives spaces and parentheses in the command name", () => {
  const stat = parseProcStat(
    "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 3 0 987654 1000 50",
  );
  deepEqual(stat, {
    pid: 4242,
    comm: "qemu (x) y",
    state: "S",
    ppid: 1,
    session: 4242,
    startTime: 987654,
  });
  throws(() => parseProcStat("garbage"), VolantError);
  throws(() => parseProcStat("1 (x) S 1"), VolantError, "too few fields");
});

Deno.test("readProcStat(), readStartTime() and isAlive() on real processes", async () => {
  const self = await readProcStat(Deno.pid);
  equal(self?.pid, Deno.pid);
  ok(self?.state !== "Z");
  const start = await readStartTime(Deno.pid);
  equal(start, self?.startTime);
  ok(await isAlive(Deno.pid, start!));
  ok(!(await isAlive(Deno.pid, start! + 1)), "another start time is a reused pid");
  equal(await readProcStat(2 ** 22 + 1), null, "pids above pid_max do not exist");
  ok(!(await isAlive(2 ** 22 + 1, 0)));
});

Deno.test("isAlive() is false for a zombie", async () => {
  // sh starts a short child, then becomes `sleep`, which never reaps it: a zombie.
  const mark = marker();
  const parent = new Deno.Command("/bin/sh", {
    args: ["-c", `sleep 0 & echo $!; exec sleep ${mark}`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const zombie = Number(new TextDecoder().decode(value).trim());
    ok(zombie > 0);
    let stat = await readProcStat(zombie);
    for (let i = 0; i < 100 && stat?.state !== "Z"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      stat = await readProcStat(zombie);
    }
    equal(stat?.state, "Z");
    equal(await isAlive(zombie, stat!.startTime), false);
    equal(await waitGone(zombie, stat!.startTime, { timeoutMs: 0 }), true);
  } finally {
    parent.kill("SIGKILL");
    await parent.stdout.cancel().catch(() => {});
    await parent.status;
  }
});
