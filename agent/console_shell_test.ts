import { deepEqual, equal, ok } from "node:assert/strict";
import { startConsoleShell } from "./console_shell.ts";

const BUSYBOX = "/bin/busybox";
const hasBusybox = await Deno.stat(BUSYBOX).then(() => true, () => false);
/** What a skipped test says: these run the real busybox (`./volant` installs busybox-static). */
const SKIP = hasBusybox ? "" : ` (skipped: ${BUSYBOX} is missing; apt-get install busybox-static)`;

Deno.test({
  name: "startConsoleShell() runs busybox setsid cttyhack sh and respawns it until stopped" + SKIP,
  ignore: !hasBusybox,
  fn: async () => {
    const calls: string[][] = [];
    const shell = startConsoleShell({
      busybox: BUSYBOX,
      respawnMs: 10,
      // A stand-in shell that exits at once (a real one would wait on the console).
      spawn: (cmd, opts) => {
        calls.push([cmd, ...(opts.args ?? [])]);
        return new Deno.Command(cmd, { args: ["true"], stdout: "null", stderr: "null" }).spawn();
      },
    });
    const deadline = Date.now() + 10_000;
    while (shell.starts < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await shell.stop();
    ok(shell.starts >= 3, `respawned: ${shell.starts} starts`);
    deepEqual(calls[0], [BUSYBOX, "setsid", "cttyhack", "sh", "-l"]);
    const after = shell.starts;
    await new Promise((r) => setTimeout(r, 50));
    equal(shell.starts, after, "no respawn after stop()");
  },
});

Deno.test({
  name: "startConsoleShell().stop() ends a shell that is still running" + SKIP,
  ignore: !hasBusybox,
  fn: async () => {
    let child: Deno.ChildProcess | undefined;
    const shell = startConsoleShell({
      busybox: BUSYBOX,
      spawn: (cmd) =>
        child = new Deno.Command(cmd, { args: ["sleep", "30"], stdout: "null" }).spawn(),
    });
    await shell.stop();
    const status = await child!.status;
    equal(status.signal, "SIGKILL");
    equal(shell.starts, 1);
  },
});

Deno.test("startConsoleShell() logs a binary it cannot start and does not retry", async () => {
  const lines: string[] = [];
  const shell = startConsoleShell({ busybox: "/nonexistent/busybox", log: (l) => lines.push(l) });
  await shell.stop();
  equal(shell.starts, 0);
  ok(lines[0]?.includes("/nonexistent/busybox"), lines.join("\n"));
});
