import { deepEqual, equal, notEqual, ok, rejects } from "node:assert/strict";
import { sha256File } from "./_hash.ts";
import {
  buildRuntimeImage,
  busyboxApplets,
  kestrelLauncher,
  RUNTIME_EMPTY_DIRS,
  sharedLibraries,
  stageRuntime,
  uuidFromDigest,
} from "./runtime_image.ts";
import { hasCommand } from "./testing.ts";

const BUSYBOX = "/bin/busybox";
const HAS_BUSYBOX = await Deno.stat(BUSYBOX).then(() => true, () => false);
const HAS_EROFS = hasCommand("mkfs.erofs") && hasCommand("fsck.erofs");

Deno.test("sharedLibraries() lists Deno's glibc files and the loader", async () => {
  const libs = await sharedLibraries(Deno.execPath());
  ok(libs.some((l) => l.endsWith("/libc.so.6")), libs.join(" "));
  ok(libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l)), libs.join(" "));
  ok(libs.every((l) => l.startsWith("/")));
  for (const lib of libs) ok((await Deno.stat(lib)).isFile, lib);
});

Deno.test({
  name: "sharedLibraries() finds none in a static busybox" +
    (HAS_BUSYBOX ? "" : ` (skipped: ${BUSYBOX} is missing; apt-get install busybox-static)`),
  ignore: !HAS_BUSYBOX,
  fn: async () => deepEqual(await sharedLibraries(BUSYBOX), []),
});

Deno.test("uuidFromDigest() formats the first 16 bytes", () => {
  equal(
    uuidFromDigest("sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
    "00112233-4455-6677-8899-aabbccddeeff",
  );
});

async function makeBundle(dir: string, text = `console.log("bundle");\n`): Promise<string> {
  await Deno.writeTextFile(`${dir}/volant.js`, text);
  return `${dir}/volant.js`;
}

Deno.test({
  name:
    "stageRuntime() lays out deno, libraries, busybox, bundle, launcher, /etc and mount points" +
    (HAS_BUSYBOX ? "" : ` (skipped: ${BUSYBOX} is missing; apt-get install busybox-static)`),
  ignore: !HAS_BUSYBOX,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-stage-" });
    try {
      const staging = `${dir}/stage`;
      await Deno.mkdir(staging);
      // A static binary stands in for Deno here (the layout is the point, not the 95 MB copy).
      await stageRuntime(staging, {
        bundle: await makeBundle(dir),
        deno: BUSYBOX,
        busybox: BUSYBOX,
      });
      equal((await Deno.stat(`${staging}/usr/bin/deno`)).mode! & 0o777, 0o755);
      equal(
        await Deno.readTextFile(`${staging}/opt/volant/kestrel.js`),
        `console.log("bundle");\n`,
      );
      equal(await Deno.readLink(`${staging}/bin/sh`), "busybox");
      const applets = await busyboxApplets(BUSYBOX);
      ok(applets.length > 100 && applets.includes("mount"));
      equal(await Deno.readLink(`${staging}/bin/mount`), "busybox");
      equal(await Deno.readTextFile(`${staging}/usr/bin/kestrel`), kestrelLauncher());
      ok(kestrelLauncher().includes('/opt/volant/kestrel.js kestrel "$@"'));
      ok((await Deno.readTextFile(`${staging}/etc/passwd`)).startsWith("root:x:0:0:"));
      ok((await Deno.readTextFile(`${staging}/etc/group`)).startsWith("root:x:0:"));
      equal(await Deno.readLink(`${staging}/etc/resolv.conf`), "../run/resolv.conf");
      for (const d of RUNTIME_EMPTY_DIRS) {
        deepEqual([...Deno.readDirSync(`${staging}/${d}`)], [], d);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "buildRuntimeImage() is reproducible and holds the staged tree (real Deno, mkfs.erofs)" +
    (HAS_BUSYBOX
      ? (HAS_EROFS
        ? ""
        : " (skipped: mkfs.erofs or fsck.erofs is missing; apt-get install erofs-utils)")
      : (HAS_BUSYBOX ? "" : ` (skipped: ${BUSYBOX} is missing; apt-get install busybox-static)`)),
  ignore: !HAS_BUSYBOX || !HAS_EROFS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-runtime-" });
    try {
      const bundle = await makeBundle(dir);
      const inputs = { bundle, deno: Deno.execPath(), busybox: BUSYBOX };
      const uuid = "6d1c5a52-3b7e-4f0e-9a49-0c1e5b7f2a11";
      await buildRuntimeImage({ ...inputs, output: `${dir}/a.erofs`, uuid });
      // Touch the inputs' mtimes: timestamps must not leak into the image.
      await Deno.utime(bundle, new Date(), new Date(2001, 1, 1));
      await buildRuntimeImage({ ...inputs, output: `${dir}/b.erofs`, uuid });
      equal(await sha256File(`${dir}/a.erofs`), await sha256File(`${dir}/b.erofs`));
      // A different bundle gives a different image.
      await makeBundle(dir, `console.log("other");\n`);
      await buildRuntimeImage({ ...inputs, output: `${dir}/c.erofs`, uuid });
      notEqual(await sha256File(`${dir}/c.erofs`), await sha256File(`${dir}/a.erofs`));
      // No staging dirs or temp files are left next to the output.
      deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
        ["a.erofs", "b.erofs", "c.erofs", "volant.js"],
      );
      // The image is valid erofs and holds the files, owned by root, at the right paths.
      const out = await new Deno.Command("fsck.erofs", {
        args: [`--extract=${dir}/x`, `${dir}/a.erofs`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      equal(await sha256File(`${dir}/x/usr/bin/deno`), await sha256File(Deno.execPath()));
      for (const lib of await sharedLibraries(Deno.execPath())) {
        equal(await sha256File(`${dir}/x${lib}`), await sha256File(lib), lib);
      }
      equal(await Deno.readTextFile(`${dir}/x/opt/volant/kestrel.js`), `console.log("bundle");\n`);
      const st = await Deno.lstat(`${dir}/x/usr/bin/deno`);
      equal(st.uid, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "buildRuntimeImage() leaves nothing behind when staging fails" +
    (HAS_EROFS
      ? ""
      : " (skipped: mkfs.erofs or fsck.erofs is missing; apt-get install erofs-utils)"),
  ignore: !HAS_EROFS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-runtime-" });
    try {
      await rejects(
        buildRuntimeImage({
          bundle: `${dir}/missing.js`,
          deno: BUSYBOX,
          busybox: BUSYBOX,
          output: `${dir}/r.erofs`,
          uuid: "6d1c5a52-3b7e-4f0e-9a49-0c1e5b7f2a11",
        }),
      );
      deepEqual([...Deno.readDirSync(dir)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
