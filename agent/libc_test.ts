import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  closeFd,
  creditEntropy,
  decodeWaitStatus,
  encodeRandPoolInfo,
  encodeTimespec,
  ioctlBuffer,
  mount,
  O_CLOEXEC,
  O_RDONLY,
  openFd,
  RNDADDENTROPY,
  RNDRESEEDCRNG,
  umount2,
  waitpid,
  WNOHANG,
} from "./libc.ts";

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

Deno.test("encodeRandPoolInfo(): entropy_count in bits, buf_size in bytes, then the bytes", () => {
  const bytes = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
  const info = encodeRandPoolInfo(bytes);
  assert.equal(info.length, 72);
  assert.deepEqual([...info.subarray(0, 8)], [0x00, 0x02, 0, 0, 64, 0, 0, 0]); // 512 bits, 64 bytes
  assert.deepEqual([...info.subarray(8)], [...bytes]);
  assert.deepEqual([...encodeRandPoolInfo(new Uint8Array([7]), 3)], [3, 0, 0, 0, 1, 0, 0, 0, 7]);
  // The ioctl numbers of linux/random.h: _IOW('R', 0x03, int[2]) and _IO('R', 0x07).
  assert.equal(RNDADDENTROPY, (1 << 30) | (8 << 16) | (0x52 << 8) | 0x03);
  assert.equal(RNDRESEEDCRNG, (0x52 << 8) | 0x07);
});

Deno.test("encodeTimespec(): seconds and nanoseconds of a time in ms; refuses fractions", () => {
  const view = new DataView(encodeTimespec(1_900_000_000_123).buffer);
  assert.equal(view.getBigInt64(0, true), 1_900_000_000n);
  assert.equal(view.getBigInt64(8, true), 123_000_000n);
  assert.deepEqual([...encodeTimespec(0)], new Array(16).fill(0));
  assert.throws(() => encodeTimespec(1.5), /not a whole number/);
  assert.throws(() => encodeTimespec(-1), /not a whole number/);
});

Deno.test("openFd() names the errno and the path; an ioctl a device lacks is ENOTTY", () => {
  const path = `/nonexistent-volant-${crypto.randomUUID()}`;
  assert.throws(() => openFd(path, O_RDONLY | O_CLOEXEC), (err) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.details?.errno, "ENOENT");
    assert.ok(err.message.startsWith(`open ${path} failed: ENOENT`), err.message);
    return true;
  });
  assert.throws(() => creditEntropy(new Uint8Array(8), "/dev/null"), (err) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.details?.errno, "ENOTTY");
    assert.match(err.message, /^ioctl RNDADDENTROPY on \/dev\/null failed: ENOTTY/);
    return true;
  });
});

Deno.test({
  name: "creditEntropy() adds, credits and reseeds on the real /dev/urandom" +
    (isRoot ? "" : " (skipped: needs root)"),
  ignore: !isRoot,
  // Harmless: it only adds 64 random bytes to the host's pool (CAP_SYS_ADMIN).
  fn() {
    creditEntropy(crypto.getRandomValues(new Uint8Array(64)));
    // The kernel reads our struct: a negative credit is refused (EINVAL), not ignored.
    const fd = openFd("/dev/urandom", O_RDONLY | O_CLOEXEC);
    try {
      const info = encodeRandPoolInfo(new Uint8Array(8), -8);
      assert.throws(() => ioctlBuffer(fd, RNDADDENTROPY, info, "RNDADDENTROPY"), /EINVAL/);
    } finally {
      closeFd(fd);
    }
  },
});
