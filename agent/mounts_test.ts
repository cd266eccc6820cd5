import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { fakeSystem, mountinfoLine, trackMounts } from "./_fake_system.ts";
import {
  describeMount,
  ensureMounts,
  parseMountinfo,
  planMounts,
  PTMX_LINK,
  STANDARD_MOUNTS,
} from "./mounts.ts";

// What Volant's stage 0 leaves behind: erofs root, devtmpfs, proc, sysfs moved in, tmpfs /tmp /run.
const STAGE0_MOUNTINFO = [
  "20 1 254:0 / / ro,relatime - erofs /dev/vda ro,user_xattr,acl,cache_strategy=readaround",
  "21 20 0:21 / /tmp rw,relatime - tmpfs tmpfs rw,mode=1777",
  "22 20 0:22 / /run rw,relatime - tmpfs tmpfs rw,mode=755",
  "2 20 0:2 / /proc rw,relatime - proc proc rw",
  "3 20 0:20 / /sys rw,relatime - sysfs sysfs rw",
  "4 20 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw,size=109984k,nr_inodes=27496,mode=755",
  "",
].join("\n");

Deno.test("parseMountinfo() reads fields, optional tags and octal escapes", () => {
  const text = [
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue",
    "40 20 0:40 / /media/my\\040disk\\011x rw - vfat /dev/sd\\134b rw",
    "garbage line",
    "",
  ].join("\n");
  const entries = parseMountinfo(text);
  assert.equal(entries.length, 2);
  assert.deepEqual(entries[0], {
    id: 36,
    parentId: 35,
    root: "/mnt1",
    mountPoint: "/mnt2",
    options: "rw,noatime",
    fsType: "ext3",
    source: "/dev/root",
    superOptions: "rw,errors=continue",
  });
  assert.equal(entries[1]?.mountPoint, "/media/my disk\tx");
  assert.equal(entries[1]?.source, "/dev/sd\\b");
});

Deno.test("parseMountinfo() parses this host's real mountinfo", async () => {
  const entries = parseMountinfo(await Deno.readTextFile("/proc/self/mountinfo"));
  assert.ok(entries.some((e) => e.mountPoint === "/"), "no root mount found");
  const proc = entries.find((e) => e.mountPoint === "/proc");
  assert.equal(proc?.fsType, "proc");
});

Deno.test("planMounts() after stage 0 adds only devpts and /dev/shm", () => {
  const plan = planMounts(parseMountinfo(STAGE0_MOUNTINFO));
  assert.deepEqual(plan.map((m) => `${m.fstype} ${m.target}`), [
    "devpts /dev/pts",
    "tmpfs /dev/shm",
  ]);
  assert.equal(plan[0]?.data, "newinstance,ptmxmode=0666,mode=0620");
});

Deno.test("planMounts() with nothing mounted plans everything, parents first", () => {
  const plan = planMounts([]);
  assert.deepEqual(plan.map((m) => m.target), [
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/tmp",
    "/run",
  ]);
  assert.equal(planMounts(parseMountinfo(STAGE0_MOUNTINFO), []).length, 0);
});

Deno.test("planMounts() keeps whatever is already mounted on a target", () => {
  const mounted = parseMountinfo(
    STANDARD_MOUNTS.map((m, i) => mountinfoLine(i + 1, m.target, "ext4")).join("\n"),
  );
  assert.deepEqual(planMounts(mounted), []);
});

Deno.test("describeMount() names type, target and options", () => {
  assert.equal(
    describeMount(STANDARD_MOUNTS.find((m) => m.target === "/dev/pts")!),
    "devpts on /dev/pts (newinstance,ptmxmode=0666,mode=0620)",
  );
});

Deno.test("ensureMounts() after stage 0 mounts devpts and shm and keeps /dev/ptmx", async () => {
  const fake = fakeSystem({
    files: { "/proc/self/mountinfo": STAGE0_MOUNTINFO },
    paths: ["/dev/ptmx"],
    onMount: trackMounts,
  });
  const done = await ensureMounts(fake);
  assert.deepEqual(done.map((m) => m.target), ["/dev/pts", "/dev/shm"]);
  assert.deepEqual(fake.calls, [
    "mkdirp /dev/pts",
    "mount devpts /dev/pts",
    "mkdirp /dev/shm",
    "mount tmpfs /dev/shm",
  ]);
  // Idempotent: a second run mounts nothing.
  fake.calls.length = 0;
  assert.deepEqual(await ensureMounts(fake), []);
  assert.deepEqual(fake.calls, []);
});

Deno.test("ensureMounts() with nothing mounted mounts /proc first, then the rest, and links ptmx", async () => {
  const fake = fakeSystem({
    paths: ["/proc", "/sys", "/dev", "/tmp", "/run"],
    onMount: trackMounts,
  });
  const done = await ensureMounts(fake);
  assert.equal(done.length, STANDARD_MOUNTS.length);
  assert.deepEqual(fake.calls, [
    "mount proc /proc",
    "mount sysfs /sys",
    "mount devtmpfs /dev",
    "mkdirp /dev/pts",
    "mount devpts /dev/pts",
    "mkdirp /dev/shm",
    "mount tmpfs /dev/shm",
    "mount tmpfs /tmp",
    "mount tmpfs /run",
    `symlink /dev/ptmx -> ${PTMX_LINK}`,
  ]);
});

Deno.test("ensureMounts() stops at the first mount error", async () => {
  const error = new VolantError("internal", "mount devpts on /dev/pts failed: EBUSY", {
    errno: "EBUSY",
  });
  const fake = fakeSystem({
    files: { "/proc/self/mountinfo": STAGE0_MOUNTINFO },
    paths: ["/dev/pts"],
    failMount: { target: "/dev/pts", error },
  });
  await assert.rejects(ensureMounts(fake), (err) => err === error);
  assert.ok(!fake.calls.some((c) => c.includes("/dev/shm")), "went on after the failure");
});
