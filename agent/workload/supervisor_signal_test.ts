import assert from "node:assert/strict";
import { cannotRun, events, output, waitForStatus, waitUntil, withSupervisor } from "./testing.ts";

const skip = cannotRun();
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

Deno.test({
  name: "Supervisor.signal() signals the running workload's group, and nothing once stopped" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withSupervisor({
      workload: {
        // The shell's child (sleep) is in the same group: the trap runs once it ends.
        entrypoint: [
          "/bin/sh",
          "-c",
          'trap "echo got-hup" HUP; echo ready; while true; do sleep 0.05; done',
        ],
        base_url: "http://127.0.0.1:1",
      },
    }, async (sup) => {
      assert.equal(sup.signal("SIGHUP"), false, "nothing runs yet");
      await sup.start();
      await waitUntil("the trap to be set", () => output(sup).includes("ready"));
      const pid = sup.status().pid;
      assert.equal(sup.signal("SIGHUP"), true);
      await waitUntil("the workload to see SIGHUP", () => output(sup).includes("got-hup"));
      assert.equal(sup.status().pid, pid, "the workload survived its signal");
      assert.equal(sup.status().state, "running");
      assert.ok(
        events(sup).includes(`sent SIGHUP to pid ${pid}'s process group`),
        events(sup).join("\n"),
      );
      await sup.stop(500);
      await waitForStatus(sup, "stopped", (s) => s.state === "stopped");
      assert.equal(sup.signal("SIGHUP"), false, "no run, nothing sent");
    }),
});
