import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { alive, APP_USER, BUSYBOX, cannotRun, makeRoot, waitUntil } from "./testing.ts";
import { commandOptions, DEFAULT_PATH, killGroup, planLaunch, workloadEnv } from "./launch.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

Deno.test("workloadEnv() is exactly the manifest's env plus a default PATH", () => {
  assert.deepEqual(workloadEnv({}), { PATH: DEFAULT_PATH });
  assert.deepEqual(workloadEnv({ A: "1", PATH: "/opt/bin" }), { PATH: "/opt/bin", A: "1" });
});

Deno.test({
  name: "planLaunch(): a root other than / goes through busybox nsenter with ids and workdir" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    try {
      const spec = await planLaunch(["sh", "-c", "id"], {
        env: { A: "b" },
        workdir: "/srv",
        user: APP_USER.name,
      }, { root: `${root}/`, busybox: BUSYBOX });
      assert.deepEqual(spec, {
        command: BUSYBOX,
        args: [
          "nsenter",
          "-F",
          `-r${root}`,
          `-w${root}/srv`,
          "-S",
          String(APP_USER.uid),
          "-G",
          String(APP_USER.gid),
          "--",
          "/bin/sh",
          "-c",
          "id",
        ],
        env: { PATH: DEFAULT_PATH, A: "b" },
        cwd: "/",
        ids: undefined,
      });
      const plain = await planLaunch(["/bin/true"], { env: {} }, { root });
      assert.deepEqual(plain.args, ["nsenter", "-F", `-r${root}`, `-w${root}`, "--", "/bin/true"]);
      assert.equal(plain.command, "/usr/bin/busybox");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "planLaunch(): root / runs the program itself with cwd and ids" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const spec = await planLaunch([BUSYBOX, "true"], { env: {}, user: "5:6", workdir: "/tmp" }, {
      root: "/",
    });
    assert.deepEqual(spec, {
      command: BUSYBOX,
      args: ["true"],
      env: { PATH: DEFAULT_PATH },
      cwd: "/tmp",
      ids: { uid: 5, gid: 6 },
    });
    const found = await planLaunch(["busybox"], { env: { PATH: "/nonexistent:/bin" } }, {
      root: "/",
    });
    assert.equal(found.command, "/bin/busybox");
    const opts = commandOptions(spec, "piped");
    assert.deepEqual(
      [opts.clearEnv, opts.uid, opts.gid, opts.cwd, opts.stdin, opts.stdout, opts.detached],
      [true, 5, 6, "/tmp", "null", "piped", true],
    );
  },
});

Deno.test({
  name: "planLaunch(): a missing workdir, program or user is an invalid_argument naming the field" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    const field = async (p: Promise<unknown>) => {
      const err = await p.then(() => undefined, (e) => e);
      assert.ok(err instanceof VolantError, String(err));
      assert.equal(err.code, "invalid_argument");
      return err.message;
    };
    try {
      const place = { root, busybox: BUSYBOX };
      assert.match(
        await field(planLaunch(["/bin/true"], { env: {}, workdir: "/nope" }, place)),
        /^workload\.workdir "\/nope" is not a directory in the workload's root/,
      );
      assert.match(
        await field(planLaunch(["/bin/nope"], { env: {} }, place)),
        /^workload\.entrypoint\[0\] "\/bin\/nope" does not exist in the workload's root/,
      );
      assert.match(
        await field(planLaunch(["nope"], { env: {} }, place)),
        /^workload\.entrypoint\[0\] "nope" is not in PATH/,
      );
      assert.match(
        await field(planLaunch(["/bin/true"], { env: {}, user: "ghost" }, place)),
        /^workload\.user "ghost": no such user/,
      );
      assert.match(
        await field(planLaunch(["/bin/true"], { env: {} }, { root: "relative" })),
        /must be an absolute directory/,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "planLaunch() + commandOptions(): the program runs chrooted with its ids, exec'd (same pid)" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    try {
      await Deno.writeTextFile(`${root}/srv/marker`, "inside\n");
      const spec = await planLaunch(
        ["sh", "-c", 'id -u; id -g; pwd; cat marker; echo "$A"; echo $$'],
        { env: { A: "from env" }, workdir: "/srv", user: APP_USER.name },
        { root, busybox: BUSYBOX },
      );
      const child = new Deno.Command(spec.command, commandOptions(spec, "piped")).spawn();
      const out = await child.output();
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.deepEqual(lines.slice(0, 5), [
        String(APP_USER.uid),
        String(APP_USER.gid),
        "/srv",
        "inside",
        "from env",
      ]);
      assert.equal(Number(lines[5]), child.pid, "nsenter -F must exec, not fork");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "killGroup() signals the whole group and reports a group that is gone" + SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", "sleep 600 & echo $!; wait"],
      stdout: "piped",
      detached: true,
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    const sleeper = Number(new TextDecoder().decode(first.value).trim());
    assert.ok(killGroup(child.pid, "SIGKILL"));
    assert.equal((await child.status).signal, "SIGKILL");
    await child.stdout.cancel();
    await waitUntil("the group's sleep to die", () => !alive(sleeper), 5000);
    // A zombie still belongs to its group: once its new parent collected it, the group is gone.
    await waitUntil("the sleep to be collected", async () => {
      return await Deno.stat(`/proc/${sleeper}`).then(() => false, () => true);
    }, 10_000);
    assert.equal(killGroup(child.pid, "SIGKILL"), false);
  },
});
