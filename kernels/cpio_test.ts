import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { type CpioEntry, readCpio, writeCpio } from "./cpio.ts";

const enc = new TextEncoder();

function sample(): CpioEntry[] {
  return [
    { type: "file", path: "/init", data: enc.encode("#!/bin/sh\necho hi\n"), mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "file", path: "bin/busybox", data: new Uint8Array([1, 2, 3]), mode: 0o755 },
    { type: "chardev", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { type: "dir", path: "proc" },
  ];
}

Deno.test("writeCpio() is deterministic whatever the input order", async () => {
  const a = writeCpio(sample());
  const b = writeCpio(sample().reverse());
  deepEqual(a, b);
  const hash = async (x: Uint8Array<ArrayBuffer>) =>
    Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", x))).join(",");
  equal(await hash(a as Uint8Array<ArrayBuffer>), await hash(b as Uint8Array<ArrayBuffer>));
  equal(a.length % 4, 0);
});

Deno.test("writeCpio() round-trips through readCpio() with parents added", () => {
  const members = readCpio(writeCpio(sample(), { mtime: 1234 }));
  deepEqual(members.map((m) => `${m.type}:${m.path}`), [
    "dir:bin",
    "file:bin/busybox",
    "symlink:bin/sh",
    "dir:dev",
    "chardev:dev/console",
    "file:init",
    "dir:proc",
  ]);
  const console_ = members.find((m) => m.path === "dev/console")!;
  equal(console_.rdevMajor, 5);
  equal(console_.rdevMinor, 1);
  equal(console_.mode, 0o600);
  const init = members.find((m) => m.path === "init")!;
  equal(init.mode, 0o755);
  equal(new TextDecoder().decode(init.data), "#!/bin/sh\necho hi\n");
  ok(members.every((m) => m.uid === 0 && m.gid === 0 && m.mtime === 1234));
});

Deno.test("writeCpio() output is accepted by the system cpio tool", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-cpio-" });
  try {
    const archive = `${dir}/a.cpio`;
    await Deno.writeFile(archive, writeCpio(sample().filter((e) => e.type !== "chardev")));
    const out = await new Deno.Command("cpio", {
      args: ["-i", "-d", "--quiet", "-F", archive],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    equal(await Deno.readTextFile(`${dir}/init`), "#!/bin/sh\necho hi\n");
    equal(await Deno.readLink(`${dir}/bin/sh`), "busybox");
    equal((await Deno.stat(`${dir}/init`)).mode! & 0o777, 0o755);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeCpio() refuses duplicates, escapes and files used as directories", () => {
  throws(() => writeCpio([{ type: "dir", path: "a" }, { type: "dir", path: "/a/" }]), /twice/);
  throws(() => writeCpio([{ type: "dir", path: "../etc" }]), /inside the archive/);
  throws(
    () =>
      writeCpio([
        { type: "file", path: "a", data: new Uint8Array() },
        { type: "file", path: "a/b", data: new Uint8Array() },
      ]),
    /needs a to be a directory/,
  );
  throws(() => readCpio(enc.encode("garbage that is long enough".repeat(5))), /Not a cpio/);
});
