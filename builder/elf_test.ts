import assert from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { inspectElf, isElf } from "./elf.ts";
import { fabricateElf, HAS_BUSYBOX, run } from "./testing.ts";

/** readelf's view of a binary's loader and dynamic section, as an independent oracle. */
async function readelf(path: string) {
  const dyn = await run("readelf", ["-dW", path]);
  const prog = await run("readelf", ["-lW", path]);
  assert.equal(dyn.code, 0, dyn.stderr);
  const needed = [...dyn.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)]
    .map((m) => m[1]);
  const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(prog.stdout)?.[1];
  return { needed, interp };
}

Deno.test("inspectElf() reads /bin/ls's loader and DT_NEEDED like readelf does", async () => {
  const info = inspectElf(await Deno.readFile("/bin/ls"));
  const oracle = await readelf("/bin/ls");
  assert.equal(info.bits, 64);
  assert.equal(info.machine, 62);
  assert.equal(info.static, false);
  assert.equal(info.interpreter, oracle.interp);
  assert.deepEqual(info.needed, oracle.needed);
  assert.ok(info.needed.includes("libc.so.6"));
});

Deno.test("inspectElf() reads a shared library's soname", async () => {
  const info = inspectElf(await Deno.readFile("/lib/x86_64-linux-gnu/libc.so.6"));
  assert.equal(info.soname, "libc.so.6");
  assert.equal(info.type, "dyn");
  assert.equal(info.static, false); // libc needs the loader
});

Deno.test({
  name: HAS_BUSYBOX
    ? "inspectElf() finds nothing to load for the static busybox"
    : "inspectElf() static busybox (skipped: /bin/busybox missing; apt-get install busybox-static)",
  ignore: !HAS_BUSYBOX,
  async fn() {
    const info = inspectElf(await Deno.readFile("/bin/busybox"));
    assert.equal(info.interpreter, undefined);
    assert.deepEqual(info.needed, []);
    assert.equal(info.static, true);
  },
});

Deno.test("inspectElf() reads a fabricated ELF's DT_NEEDED, DT_RUNPATH and DT_RPATH", () => {
  const bytes = fabricateElf({
    interpreter: "/lib/ld-test.so.1",
    needed: ["liba.so.1", "libb.so.2"],
    runpath: "$ORIGIN/../lib:/opt/x/lib",
    rpath: "/old",
  });
  const info = inspectElf(bytes);
  assert.equal(info.interpreter, "/lib/ld-test.so.1");
  assert.deepEqual(info.needed, ["liba.so.1", "libb.so.2"]);
  assert.deepEqual(info.runpath, ["$ORIGIN/../lib", "/opt/x/lib"]);
  assert.deepEqual(info.rpath, ["/old"]);
  assert.equal(info.static, false);
});

Deno.test("inspectElf() rejects truncated files with invalid_argument", () => {
  const bytes = fabricateElf({ needed: ["liba.so.1"] });
  for (const cut of [10, 64, 100, bytes.length - 20]) {
    assert.throws(
      () => inspectElf(bytes.subarray(0, cut)),
      (err) => err instanceof VolantError && /Not a valid ELF file/.test(err.message),
      `cut at ${cut}`,
    );
  }
});

Deno.test("isElf() tells ELF files from scripts", async () => {
  assert.ok(isElf(await Deno.readFile("/bin/ls")));
  assert.ok(!isElf(new TextEncoder().encode("#!/bin/sh\necho hi\n")));
  assert.ok(!isElf(new Uint8Array([0x7f, 0x45])));
});
