import assert from "node:assert/strict";
import { setChildSubreaper } from "../libc.ts";
import { Reaper } from "../reaper.ts";
import { adoptEarlyWorkload, runStatus } from "./adopt.ts";
import { Supervisor } from "./supervisor.ts";
import { plugin, waitForStatus } from "./testing.ts";

let detachPath: string | undefined;
/** Stage 0's detach helper, compiled once for these tests. */
async function detach(): Promise<string> {
  if (detachPath === undefined) {
    const { buildDetach } = await import("../../kernels/detach/build.ts");
    const path = await Deno.makeTempFile({ prefix: "volant-detach-" });
    await Deno.writeFile(path, (await buildDetach()).data, { mode: 0o755 });
    detachPath = path;
  }
  return detachPath;
}

const hasCompiler = await new Deno.Command("gcc", { args: ["--version"], stdout: "null" })
  .output().then((r) => r.success, () => false);
const NO_CC = hasCompiler ? "" : " (skipped: no C compiler for stage 0's detach helper)";

/**
 * What stage 0 does, with this process in PID 1's place (a child subreaper): two FIFOs held
 * open read-write (stage 0's fds 3 and 4), a workload started in the background writing into
 * them, its pid in a file. Returns the files and the holders (closing one closes the fd).
 */
async function stageZero(dir: string, script: string) {
  const files = { pid: `${dir}/workload.pid`, stdout: `${dir}/out`, stderr: `${dir}/err` };
  for (const fifo of [files.stdout, files.stderr]) {
    const made = await new Deno.Command("mkfifo", { args: ["-m", "0600", fifo] }).output();
    assert.ok(made.success);
  }
  const holders = {
    stdout: await Deno.open(files.stdout, { read: true, write: true }),
    stderr: await Deno.open(files.stderr, { read: true, write: true }),
  };
  const shell = await new Deno.Command("sh", {
    // In a session of its own through stage 0's own detach helper (it keeps the pid: no fork).
    args: [
      "-c",
      `${await detach()} /bin/sh -c '${script}' >${files.stdout} 2>${files.stderr} </dev/null & ` +
      `echo $! >${files.pid}`,
    ],
  }).output();
  assert.ok(shell.success);
  // The descriptors the holders got, as kestrel finds its inherited ones.
  const fds: Record<string, number> = {};
  for await (const entry of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${entry.name}`).catch(() => "");
    if (target === files.stdout) fds.stdout = Number(entry.name);
    if (target === files.stderr) fds.stderr = Number(entry.name);
  }
  assert.ok(fds.stdout !== undefined && fds.stderr !== undefined);
  const closed: number[] = [];
  const inherited = {
    fds: { stdout: fds.stdout, stderr: fds.stderr },
    close: (fd: number) => {
      closed.push(fd);
      (fd === fds.stdout ? holders.stdout : holders.stderr).close();
    },
  };
  return { files, inherited, closed };
}

Deno.test("runStatus() decodes exits and signals as Deno.CommandStatus does", () => {
  assert.deepEqual(runStatus({ kind: "exited", code: 0 }), {
    success: true,
    code: 0,
    signal: null,
  });
  assert.deepEqual(runStatus({ kind: "exited", code: 5 }), {
    success: false,
    code: 5,
    signal: null,
  });
  assert.deepEqual(runStatus({ kind: "signaled", signal: 9 }), {
    success: false,
    code: 137,
    signal: "SIGKILL",
  });
  assert.deepEqual(runStatus({ kind: "other", raw: 0x137f }), {
    success: false,
    code: null,
    signal: null,
  });
});

Deno.test("adoptEarlyWorkload(): nothing to adopt without stage 0's FIFOs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = { pid: `${dir}/pid`, stdout: `${dir}/out`, stderr: `${dir}/err` };
    const run = await adoptEarlyWorkload({
      claim: () => Promise.reject(new Error("no claim expected")),
      files,
      inherited: false,
    });
    assert.equal(run, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adoptEarlyWorkload(): a pid that is not this process's child is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = { pid: `${dir}/pid`, stdout: `${dir}/out`, stderr: `${dir}/err` };
    await Deno.writeTextFile(files.stdout, "");
    await Deno.writeTextFile(files.pid, `${Deno.ppid}\n`);
    await assert.rejects(
      adoptEarlyWorkload({ claim: () => new Promise(() => {}), files, inherited: false }),
      new RegExp(`pid ${Deno.ppid} from .* is not a child of this process`),
    );
    await Deno.writeTextFile(files.pid, "1; rm -rf /\n");
    await assert.rejects(
      adoptEarlyWorkload({
        claim: () => new Promise(() => {}),
        files,
        inherited: false,
        waitMs: 50,
      }),
      /no valid pid in .* after 50 ms/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a workload stage 0 started is adopted: output, exit status through the reaper, then " +
    "kestrel's own restarts" + NO_CC,
  ignore: !hasCompiler,
}, async () => {
  setChildSubreaper(true);
  const dir = await Deno.makeTempDir();
  const reaper = new Reaper({ intervalMs: 3_600_000 });
  const orphans: number[] = [];
  const watching = new Reaper({ intervalMs: 3_600_000, onReaped: (r) => orphans.push(r.pid) });
  let sup: Supervisor | undefined;
  try {
    const { files, inherited, closed } = await stageZero(
      dir,
      "echo early-out; echo early-err >&2; sleep 0.3; exit 5",
    );
    const run = await adoptEarlyWorkload({
      claim: (pid) => reaper.claim(pid),
      files,
      inherited,
    });
    assert.ok(run !== undefined);
    assert.equal(String(run.pid), (await Deno.readTextFile(files.pid)).trim());
    assert.deepEqual(closed, [inherited.fds.stdout, inherited.fds.stderr]);
    reaper.start();
    sup = new Supervisor(
      plugin({
        workload: {
          entrypoint: ["/bin/sh", "-c", "echo again; exit 5"],
          base_url: "http://127.0.0.1:1",
        },
        restart: {
          policy: "on-failure",
          max_retries: 1,
          backoff: { initial_ms: 20, multiplier: 2, max_ms: 100 },
        },
      }),
      { adopt: run, echo: false, log: () => {}, spawn: (c, o) => reaper.spawn(c, o) },
    );
    const started = await sup.start();
    assert.equal(started.state, "running");
    assert.equal(started.pid, run.pid);
    const failed = await waitForStatus(sup, "failed", (s) => s.state === "failed");
    assert.equal(failed.restarts, 1, "the adopted run's exit led to one restart by kestrel");
    const lines = sup.logs.read({}).map((l) => `${l.stream} ${l.line}`);
    assert.ok(lines.includes("stdout early-out"), lines.join("\n"));
    assert.ok(lines.includes("stderr early-err"), lines.join("\n"));
    assert.ok(lines.includes("stdout again"), lines.join("\n"));
    assert.ok(
      lines.some((l) =>
        new RegExp(`^kestrel adopted \\(started by stage 0\\) pid ${run.pid}: `).test(l)
      ),
      lines.join("\n"),
    );
    assert.ok(lines.some((l) => /^kestrel exited with code 5 after \d+ ms; restarting/.test(l)));
    // The reaper collected the adopted pid for its claimant, not as an orphan.
    watching.start();
    await watching.scan();
    assert.ok(!orphans.includes(run.pid));
    assert.equal(reaper.reapedCount, 0);
  } finally {
    await sup?.stop();
    reaper.stop();
    watching.stop();
    setChildSubreaper(false);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "an adopted workload the manifest cannot launch is ended and the reason reported" + NO_CC,
  ignore: !hasCompiler,
}, async () => {
  setChildSubreaper(true);
  const dir = await Deno.makeTempDir();
  const reaper = new Reaper({ intervalMs: 3_600_000 });
  try {
    const { files, inherited } = await stageZero(dir, "exec sleep 30");
    const run = await adoptEarlyWorkload({ claim: (pid) => reaper.claim(pid), files, inherited });
    assert.ok(run !== undefined);
    reaper.start();
    const sup = new Supervisor(
      plugin({
        workload: {
          entrypoint: ["/bin/sh"],
          workdir: "/no/such/dir",
          base_url: "http://127.0.0.1:1",
        },
      }),
      { adopt: run, echo: false, log: () => {} },
    );
    const s = await sup.start();
    assert.equal(s.state, "failed");
    assert.match(s.last_error ?? "", /workload\.workdir "\/no\/such\/dir" is not a directory/);
    const ended = await run.status;
    assert.equal(
      ended.signal,
      "SIGKILL",
      `the process stage 0 started was ended: ${JSON.stringify(ended)}`,
    );
  } finally {
    reaper.stop();
    setChildSubreaper(false);
    await Deno.remove(dir, { recursive: true });
  }
});
