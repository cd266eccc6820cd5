import assert from "node:assert/strict";
import { setChildSubreaper } from "../libc.ts";
import { Reaper } from "../reaper.ts";
import {
  alive,
  APP_USER,
  BUSYBOX,
  cannotRun,
  events,
  makeRoot,
  output,
  plugin,
  waitForStatus,
  waitUntil,
  withSupervisor,
} from "./testing.ts";
import { startWorkload } from "./supervisor.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;
const FAST = { initial_ms: 20, multiplier: 2, max_ms: 1000 };

Deno.test({
  name: "Supervisor: on-failure restarts a failing workload with growing backoff, then fails" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: {
        entrypoint: ["/bin/sh", "-c", "echo try; exit 1"],
        base_url: "http://127.0.0.1:1",
      },
      restart: { policy: "on-failure", max_retries: 3, backoff: FAST },
    }, async (sup) => {
      await sup.start();
      const s = await waitForStatus(sup, "failed", (s) => s.state === "failed");
      assert.equal(s.restarts, 3);
      assert.equal(s.last_exit?.code, 1);
      assert.equal(s.pid, null);
      assert.equal(s.healthy, false);
      assert.match(s.last_error ?? "", /gave up: restarted 3 times in a row .*max_retries 3/);
      const delays = events(sup).flatMap((e) => /restarting in (\d+) ms/.exec(e)?.[1] ?? []);
      assert.deepEqual(delays, ["20", "40", "80"]);
      assert.equal(output(sup).filter((l) => l === "try").length, 4);
    }),
});

Deno.test({
  name: "Supervisor: policy never leaves a failed workload exited, without restarting" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: { entrypoint: ["/bin/sh", "-c", "exit 3"], base_url: "http://127.0.0.1:1" },
      restart: { policy: "never", backoff: FAST },
    }, async (sup) => {
      await sup.start();
      const s = await waitForStatus(sup, "exited", (s) => s.state === "exited");
      assert.equal(s.restarts, 0);
      assert.deepEqual([s.last_exit?.code, s.last_exit?.signal], [3, null]);
      assert.ok(events(sup).some((e) => /exited with code 3 .*restart policy never/.test(e)));
    }),
});

Deno.test({
  name: "Supervisor: on-failure leaves a successful exit alone; always restarts it" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    await withSupervisor({
      workload: { entrypoint: ["/bin/true"], base_url: "http://127.0.0.1:1" },
      restart: { policy: "on-failure", backoff: FAST },
    }, async (sup) => {
      await sup.start();
      const s = await waitForStatus(sup, "exited", (s) => s.state === "exited");
      assert.deepEqual([s.restarts, s.last_exit?.code], [0, 0]);
    });
    await withSupervisor({
      workload: { entrypoint: ["/bin/true"], base_url: "http://127.0.0.1:1" },
      restart: { policy: "always", max_retries: 2, backoff: FAST },
    }, async (sup) => {
      await sup.start();
      const s = await waitForStatus(sup, "failed", (s) => s.state === "failed");
      assert.deepEqual([s.restarts, s.last_exit?.code], [2, 0]);
    });
  },
});

Deno.test({
  name: "Supervisor: a workload killed from outside is restarted with a new pid" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: { entrypoint: ["/bin/sleep", "600"], base_url: "http://127.0.0.1:1" },
      restart: { policy: "on-failure", backoff: FAST },
    }, async (sup) => {
      const first = await sup.start();
      assert.equal(first.state, "running");
      const pid = first.pid ?? assert.fail("no pid");
      assert.ok(alive(pid));
      Deno.kill(pid, "SIGKILL");
      const again = await waitForStatus(
        sup,
        "a new run",
        (s) => s.state === "running" && s.pid !== pid,
      );
      assert.equal(again.restarts, 1);
      assert.deepEqual([again.last_exit?.code, again.last_exit?.signal], [null, "SIGKILL"]);
      assert.ok(again.pid !== null && alive(again.pid));
    }),
});

Deno.test({
  name: "Supervisor: user and workdir apply inside the chroot; env is clean with a default PATH" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: {
        entrypoint: [
          "sh",
          "-c",
          'id -u; id -g; pwd; echo "PATH=$PATH"; echo "FOO=$FOO HOME=$HOME"',
        ],
        base_url: "http://127.0.0.1:1",
        user: APP_USER.name,
        workdir: "/srv",
        env: { FOO: "bar" },
      },
      restart: { policy: "never" },
    }, async (sup, root) => {
      await sup.start();
      await waitForStatus(sup, "exited", (s) => s.state === "exited");
      await waitUntil("the output", () => output(sup).length >= 5);
      assert.deepEqual(output(sup), [
        String(APP_USER.uid),
        String(APP_USER.gid),
        "/srv",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "FOO=bar HOME=",
      ]);
      assert.equal(sup.status().last_exit?.code, 0);
      assert.ok(root.length > 1);
    }),
});

Deno.test({
  name: "Supervisor: root / spawns directly, with uid:gid and workdir" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: {
        entrypoint: [BUSYBOX, "sh", "-c", `${BUSYBOX} id -u; ${BUSYBOX} id -g; ${BUSYBOX} pwd`],
        base_url: "http://127.0.0.1:1",
        user: "4321:8765",
        workdir: "/tmp",
      },
      restart: { policy: "never" },
    }, async (sup) => {
      await sup.start();
      await waitForStatus(sup, "exited", (s) => s.state === "exited");
      await waitUntil("the output", () => output(sup).length >= 3);
      assert.deepEqual(output(sup), ["4321", "8765", "/tmp"]);
    }, { root: "/" }),
});

Deno.test({
  name: "Supervisor: a configuration error fails at once, naming the field, without retries" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: { entrypoint: ["/bin/true"], base_url: "http://127.0.0.1:1", user: "nobody" },
      restart: { policy: "always", backoff: FAST },
    }, async (sup) => {
      const s = await sup.start();
      assert.equal(s.state, "failed");
      assert.equal(s.restarts, 0);
      assert.match(s.last_error ?? "", /workload\.user "nobody": no such user in .*\/etc\/passwd/);
    }),
});

Deno.test({
  name: "Supervisor: stop() sends SIGTERM to the group, then SIGKILL after the grace" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: {
        // The shell ignores SIGTERM; its background sleep shares its process group.
        entrypoint: [
          "/bin/sh",
          "-c",
          "trap '' TERM; sleep 600 & echo child $!; while :; do sleep 1; done",
        ],
        base_url: "http://127.0.0.1:1",
      },
      restart: { policy: "always", backoff: FAST },
    }, async (sup) => {
      const up = await sup.start();
      await waitUntil("the child's pid", () => output(sup).some((l) => l.startsWith("child ")));
      const child = Number(output(sup).find((l) => l.startsWith("child "))?.slice(6));
      assert.ok(alive(child));
      const s = await sup.stop(300);
      assert.equal(s.state, "stopped");
      assert.deepEqual([s.last_exit?.code, s.last_exit?.signal], [null, "SIGKILL"]);
      assert.equal(s.restarts, 0);
      assert.ok(up.pid !== null && !alive(up.pid));
      await waitUntil("the group's other process to die", () => !alive(child), 5000);
      const said = events(sup);
      const term = said.findIndex((e) => e.includes("SIGTERM, SIGKILL after 300 ms"));
      const kill = said.findIndex((e) => e.includes("still running after 300 ms; SIGKILL"));
      assert.ok(term >= 0 && kill > term, said.join("\n"));
    }),
});

Deno.test({
  name: "Supervisor: restart() replaces the process and resets the retry count" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: { entrypoint: ["/bin/sleep", "600"], base_url: "http://127.0.0.1:1" },
      restart: { policy: "on-failure", backoff: FAST },
    }, async (sup) => {
      const first = await sup.start();
      const second = await sup.restart();
      assert.equal(second.state, "running");
      assert.notEqual(second.pid, first.pid);
      assert.equal(second.restarts, 0, "a manual restart is not an automatic one");
      assert.equal(second.last_exit?.signal, "SIGTERM");
      assert.ok(first.pid !== null && !alive(first.pid));
    }),
});

Deno.test({
  name: "Supervisor: with PID 1's reaper running, every exit status reaches the supervisor" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    // This test process plays PID 1: a subreaper whose Reaper collects every untracked zombie
    // child on SIGCHLD, while the workload (which also orphans a background sleep) exits 3.
    setChildSubreaper(true);
    const orphans: number[] = [];
    const reaper = new Reaper({ intervalMs: 50, onReaped: (r) => orphans.push(r.pid) });
    reaper.start();
    try {
      await withSupervisor({
        workload: {
          entrypoint: ["/bin/sh", "-c", "(sleep 0.05 &) ; exit 3"],
          base_url: "http://127.0.0.1:1",
        },
        restart: { policy: "on-failure", max_retries: 4, backoff: { ...FAST, initial_ms: 10 } },
      }, async (sup) => {
        // Every run's pid is left to Deno while it runs: the reaper cannot steal its status.
        const tracked: boolean[] = [];
        sup.watch((s) => {
          if (s.state === "running" && s.pid !== null) tracked.push(reaper.tracked.has(s.pid));
        });
        await sup.start();
        const s = await waitForStatus(sup, "failed", (s) => s.state === "failed");
        assert.deepEqual(tracked, [true, true, true, true, true]);
        assert.equal(s.restarts, 4);
        const codes = events(sup).filter((e) => e.startsWith("exited with code 3"));
        assert.equal(codes.length, 5, events(sup).join("\n"));
        assert.ok(!events(sup).some((e) => /killed by|did not start/.test(e)));
      }, { spawn: (command, options) => reaper.spawn(command, options) });
      await waitUntil("the reaper to collect the orphans", () => orphans.length >= 1, 5000);
      assert.equal(reaper.tracked.size, 0, "pids left tracked");
    } finally {
      reaper.stop();
      setChildSubreaper(false);
    }
  },
});

Deno.test({
  name: "startWorkload() starts in the background and reports in its status" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    const sup = startWorkload(
      plugin({ workload: { entrypoint: ["/bin/sleep", "600"], base_url: "http://127.0.0.1:1" } }),
      { root, busybox: BUSYBOX, echo: false, log: () => {} },
    );
    try {
      const s = await waitForStatus(sup, "running", (s) => s.state === "running");
      assert.ok(s.pid !== null && alive(s.pid));
      assert.equal(s.healthy, true, "no health check: running is healthy");
      assert.equal(s.health.status, "none");
    } finally {
      await sup.stop(500);
      await Deno.remove(root, { recursive: true });
    }
  },
});
