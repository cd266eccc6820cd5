import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { decodeWaitStatus, mount, umount2, waitpid, WNOHANG } from "./libc.ts";

const isRoot = Deno.uid() === 0;

Deno.test({
  name: "umount2() on a missing path throws a VolantError naming ENOENT and the path" +
    (isRoot ? "" : " (skipped: needs root)"),
  ignore: !isRoot,
  // Harmless: nothing is mounted at a path that does not exist. Needs root, or the kernel
  // answers EPERM before looking at the path.
  fn() {
    const path = `/nonexistent-volant-${crypto.randomUUID()}`;
    assert.throws(
      () => umount2(path),
      (err) => {
        assert.ok(err instanceof VolantError);
        assert.equal(err.code, "internal");
        assert.equal(err.details?.errno, "ENOENT");
        assert.equal(err.details?.target, path);
        assert.match(err.message, /ENOENT \(No such file or directory\)/);
        assert.ok(err.message.includes(path));
        return true;
      },
    );
  },
});

Deno.test("waitpid() on a process that is not our child throws ECHILD", () => {
  // PID 1 of this machine is never a child of the test process.
  assert.throws(
    () => waitpid(1, WNOHANG),
    (err) => err instanceof VolantError && err.details?.errno === "ECHILD",
  );
});

Deno.test("waitpid(WNOHANG) returns pid 0 for a running child and leaves it to Deno", async () => {
  // Collecting a real exit status is covered by reaper_test.ts (a real orphan).
  const child = new Deno.Command("sleep", { args: ["0.3"] }).spawn();
  assert.equal(waitpid(child.pid, WNOHANG).pid, 0);
  assert.equal((await child.status).code, 0);
});

Deno.test("mount() rejects strings with NUL bytes before calling libc", () => {
  assert.throws(
    () => mount("tmpfs", "/tmp/a\0b", "tmpfs", 0),
    (err) => err instanceof VolantError && err.code === "invalid_argument",
  );
});

Deno.test("decodeWaitStatus() decodes exit codes and signals", () => {
  assert.deepEqual(decodeWaitStatus(0), { kind: "exited", code: 0 });
  assert.deepEqual(decodeWaitStatus(42 << 8), { kind: "exited", code: 42 });
  assert.deepEqual(decodeWaitStatus(9), { kind: "signaled", signal: 9 });
  assert.deepEqual(decodeWaitStatus(15 | 0x80), { kind: "signaled", signal: 15 }); // core dumped
  assert.equal(decodeWaitStatus((19 << 8) | 0x7f).kind, "other"); // stopped
});
