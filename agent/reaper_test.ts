import assert from "node:assert/strict";
import { setChildSubreaper } from "./libc.ts";
import { isReapable, parseProcStat, Reaper } from "./reaper.ts";

async function waitFor(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function statOf(pid: number) {
  try {
    return parseProcStat(await Deno.readTextFile(`/proc/${pid}/stat`));
  } catch {
    return undefined;
  }
}

/** Starts `sleep <seconds>` as an orphan (its shell exits at once); returns the sleep's pid. */
async function spawnOrphan(reaper: Reaper, seconds: number): Promise<number> {
  const shell = reaper.spawn("sh", {
    args: ["-c", `sleep ${seconds} >/dev/null 2>&1 & echo $!`],
    stdout: "piped",
    stderr: "null",
  });
  const out = await shell.output();
  assert.equal(out.code, 0);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("parseProcStat() takes comm up to the last parenthesis", () => {
  const tricky = parseProcStat("1234 (a) Z 1 (b) S 99 1234 1234 0 -1 4194560");
  assert.deepEqual(tricky, { pid: 1234, comm: "a) Z 1 (b", state: "S", ppid: 99 });
  const spaced = parseProcStat("77 (Web Content) Z 1 77 77 0 -1");
  assert.deepEqual(spaced, { pid: 77, comm: "Web Content", state: "Z", ppid: 1 });
  assert.equal(parseProcStat("no parens here"), undefined);
  assert.equal(parseProcStat("12 (x)"), undefined);
  assert.equal(parseProcStat("x (y) S 1"), undefined);
});

Deno.test("parseProcStat() reads this process's real /proc/self/stat", async () => {
  const stat = parseProcStat(await Deno.readTextFile("/proc/self/stat"));
  assert.equal(stat?.pid, Deno.pid);
  assert.equal(stat?.ppid, Deno.ppid);
  assert.ok(stat !== undefined && "RS".includes(stat.state));
});

Deno.test("isReapable() wants a zombie child that Deno does not own", () => {
  const zombie = { pid: 9, comm: "sleep", state: "Z", ppid: 1 };
  assert.ok(isReapable(zombie, 1, new Set()));
  assert.ok(!isReapable(zombie, 1, new Set([9])), "took a Deno-owned child");
  assert.ok(!isReapable({ ...zombie, state: "S" }, 1, new Set()), "took a live process");
  assert.ok(!isReapable({ ...zombie, ppid: 5 }, 1, new Set()), "took someone else's child");
});

Deno.test("Reaper.scan() collects a real orphan and leaves Deno's own children alone", async () => {
  // As a child subreaper, this test process gets orphans as PID 1 does in the guest.
  setChildSubreaper(true);
  try {
    const reaper = new Reaper({ intervalMs: 3_600_000 });
    const orphan = await spawnOrphan(reaper, 0.1);
    await waitFor("the orphan to become our zombie", async () => {
      const stat = await statOf(orphan);
      return stat?.state === "Z" && stat.ppid === Deno.pid;
    });
    const own = reaper.spawn("sh", { args: ["-c", "exit 7"] });
    assert.ok(reaper.tracked.has(own.pid));
    const reaped = await reaper.scan();
    const entry = reaped.find((r) => r.pid === orphan);
    assert.deepEqual(entry, { pid: orphan, comm: "sleep", status: { kind: "exited", code: 0 } });
    assert.equal(await statOf(orphan), undefined, "the zombie is still there");
    assert.ok(!reaped.some((r) => r.pid === own.pid), "stole a Deno.Command child");
    assert.equal((await own.status).code, 7);
    await waitFor("the pid to be untracked", () => Promise.resolve(!reaper.tracked.has(own.pid)));
    assert.equal(reaper.reapedCount, reaped.length);
  } finally {
    setChildSubreaper(false);
  }
});

Deno.test("Reaper.start() reaps an orphan on SIGCHLD, without waiting for its timer", async () => {
  setChildSubreaper(true);
  const reaper = new Reaper({ intervalMs: 3_600_000 });
  const seen: number[] = [];
  const watching = new Reaper({ intervalMs: 3_600_000, onReaped: (r) => seen.push(r.pid) });
  try {
    watching.start();
    watching.start(); // idempotent
    const orphan = await spawnOrphan(reaper, 0.2);
    await waitFor(
      "the SIGCHLD scan to reap the orphan",
      () => Promise.resolve(seen.includes(orphan)),
    );
    assert.equal(await statOf(orphan), undefined);
  } finally {
    watching.stop();
    setChildSubreaper(false);
  }
});
