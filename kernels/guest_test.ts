import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { sha256File } from "./_hash.ts";
import { buildGuest, GUEST_FILES, type GuestManifest, readGuestManifest } from "./guest.ts";
import { readCpio } from "./cpio.ts";
import { readKernelInfo } from "./debian_kernel.ts";
import { STAGE0_MODULES } from "./modules.ts";
import { CACHED_KERNEL, KERNEL_CACHE, NO_KERNEL_REASON } from "./testing.ts";
import { main as buildGuestCli, summary } from "../tools/build_guest.ts";

const BUSYBOX = "/bin/busybox";
const REPO = new URL("..", import.meta.url).pathname;

/**
 * A small build with Debian's kernel: busybox stands in for Deno so the runtime image stays
 * small and fast. (Volant's own kernel: volant_kernel_test.ts.)
 */
function small(dir: string, bundle: string) {
  return {
    dir,
    bundle,
    kernel: "debian" as const,
    kernelDir: KERNEL_CACHE,
    deno: BUSYBOX,
    busybox: BUSYBOX,
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-guest-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function checkFiles(dir: string, m: GuestManifest): Promise<void> {
  for (const f of GUEST_FILES) {
    equal(await sha256File(`${dir}/${f}`), m.files[f].sha256, f);
    equal((await Deno.stat(`${dir}/${f}`)).size, m.files[f].size, f);
  }
  deepEqual(await readGuestManifest(dir), m);
}

Deno.test({
  name: "buildGuest() builds every file once, then reuses them all" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const out = `${dir}/guest`;
      const lines: string[] = [];
      const first = await buildGuest({
        ...small(out, `${dir}/volant.js`),
        log: (l) => lines.push(l),
      });
      deepEqual(first.build.rebuilt, [...GUEST_FILES]);
      deepEqual(first.build.reused, []);
      equal(lines.length, 4);
      await checkFiles(out, first);
      equal(first.files["bzImage-volant"].sha256, CACHED_KERNEL!.bzImageSha256);
      equal(first.kernel.abi, CACHED_KERNEL!.abi);
      match(first.vmlinuxPvhEntry, /^0x[0-9a-f]+$/);
      // Stage 0 holds every wanted module, in the recorded order.
      const names = readCpio(await Deno.readFile(`${out}/initramfs.cpio`))
        .filter((m) => m.path.startsWith(".volant/modules/")).map((m) => m.path.slice(16, -3));
      deepEqual(names.sort(), first.inputs.modules.map((m) => m.name).sort());
      for (const want of STAGE0_MODULES) {
        ok(first.inputs.modules.some((m) => m.name === want.name), want.name);
      }

      const second = await buildGuest(small(out, `${dir}/volant.js`));
      deepEqual(second.build.rebuilt, []);
      deepEqual(second.build.reused, [...GUEST_FILES]);
      deepEqual(second.files, first.files);
      deepEqual(second.inputs, first.inputs);
    }),
});

Deno.test({
  name: "buildGuest() rebuilds only what a changed input or a damaged file affects" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const out = `${dir}/guest`;
      const first = await buildGuest(small(out, `${dir}/volant.js`));

      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(2);\n");
      const changed = await buildGuest(small(out, `${dir}/volant.js`));
      deepEqual(changed.build.rebuilt, ["runtime.erofs"]);
      ok(changed.files["runtime.erofs"].sha256 !== first.files["runtime.erofs"].sha256);
      deepEqual(changed.files["initramfs.cpio"], first.files["initramfs.cpio"]);
      await checkFiles(out, changed);

      // A damaged file is noticed (size/mtime) and rebuilt to the same bytes as before.
      await Deno.truncate(`${out}/initramfs.cpio`, 100);
      // Leftovers of an interrupted build are cleaned up.
      await Deno.writeTextFile(`${out}/runtime.erofs.tmp-424242`, "half");
      await Deno.mkdir(`${out}/.runtime-staging-abc`);
      const repaired = await buildGuest(small(out, `${dir}/volant.js`));
      deepEqual(repaired.build.rebuilt, ["initramfs.cpio"]);
      equal(repaired.files["initramfs.cpio"].sha256, first.files["initramfs.cpio"].sha256);
      const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      deepEqual(names, [".build.lock", ...GUEST_FILES, "guest.json"].sort());
    }),
});

Deno.test({
  name: "buildGuest() is deterministic: two directories, same inputs, same bytes" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const a = await buildGuest(small(`${dir}/a`, `${dir}/volant.js`));
      const b = await buildGuest(small(`${dir}/b`, `${dir}/volant.js`));
      for (const f of GUEST_FILES) equal(a.files[f].sha256, b.files[f].sha256, f);
    }),
});

Deno.test({
  name: "buildGuest() takes Debian's kernel from an older kernel dir layout (relative dir)" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      // The layout fetchDebianKernel(dir) used to leave: the bzImage copied into dir as
      // bzImage-volant, kernel.json naming it. The package's own image is used now, so the
      // guest's bzImage-volant may hold another kernel without losing Debian's.
      await Deno.copyFile(CACHED_KERNEL!.bzImage, `${dir}/bzImage-volant`);
      await Deno.writeTextFile(
        `${dir}/kernel.json`,
        JSON.stringify({ ...CACHED_KERNEL, bzImage: `${dir}/bzImage-volant` }),
      );
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const relative = "../".repeat(Deno.cwd().split("/").length - 1) + dir.slice(1);
      const m = await buildGuest({
        dir: relative,
        bundle: `${dir}/volant.js`,
        kernel: "debian",
        deno: BUSYBOX,
      });
      equal(m.kernel.flavor, "debian");
      equal(m.files["bzImage-volant"].sha256, CACHED_KERNEL!.bzImageSha256);
      const info = await readKernelInfo(dir);
      match(info?.bzImage ?? "", /\/pkg\/boot\/vmlinuz-/);
      // Another kernel in the guest's bzImage-volant leaves Debian's where it is.
      await Deno.writeTextFile(`${dir}/bzImage-volant`, "another kernel");
      equal((await readKernelInfo(dir))?.bzImageSha256, CACHED_KERNEL!.bzImageSha256);
    }),
});

Deno.test({
  name: "buildGuest() falls back to Debian's kernel when Volant's cannot be built, saying why" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const lines: string[] = [];
      const m = await buildGuest({
        ...small(`${dir}/guest`, `${dir}/volant.js`),
        kernel: "volant",
        kernelSource: `${dir}/no-linux-source.tar.xz`,
        log: (l) => lines.push(l),
      });
      equal(m.kernel.requested, "volant");
      equal(m.kernel.flavor, "debian");
      match(
        m.kernel.fallbackReason ?? "",
        /no-linux-source\.tar\.xz does not exist.*linux-source-6\.1/,
      );
      ok(lines.some((l) => l.includes("using Debian's instead")), lines.join("\n"));
      equal(m.files["bzImage-volant"].sha256, CACHED_KERNEL!.bzImageSha256);
      ok(m.inputs.modules.length > 0);
      ok(summary("g", m).some((l) => l.includes("could not be built")));
    }),
});

Deno.test("buildGuest() names the missing or unsuitable input", async () => {
  await withDir(async (dir) => {
    await rejects(
      buildGuest({ dir, bundle: `${dir}/nope.js`, busybox: BUSYBOX }),
      /The bundle .*nope\.js does not exist; build it with/,
    );
    await Deno.writeTextFile(`${dir}/volant.js`, "1;\n");
    await rejects(
      buildGuest({ dir, bundle: `${dir}/volant.js`, busybox: `${dir}/busybox` }),
      /busybox .* does not exist; install it with `apt-get install busybox-static`/,
    );
    await rejects(
      buildGuest({ dir, bundle: `${dir}/volant.js`, busybox: Deno.execPath() }),
      /dynamically linked; stage 0 needs a static one/,
    );
  });
});

Deno.test("tools/build_guest.ts exits 2 on wrong arguments and 1 on a failed build", async () => {
  equal(await buildGuestCli([]), 2);
  equal(await buildGuestCli(["a", "b", "c"]), 2);
  equal(await buildGuestCli(["--kernel", "linux", "a", "b"]), 2);
  equal(await buildGuestCli(["--kernel=debian", "a"]), 2);
  await withDir(async (dir) => {
    equal(await buildGuestCli([dir, `${dir}/missing.js`]), 1);
  });
});

Deno.test({
  name: "tools/build_guest.ts builds a guest dir, then reuses it (real subprocess, real Deno)" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: () =>
    withDir(async (dir) => {
      // kernel.json points at the cached kernel, so the CLI fetches nothing.
      const out = `${dir}/guest`;
      await Deno.mkdir(out);
      await Deno.copyFile(`${KERNEL_CACHE}/kernel.json`, `${out}/kernel.json`);
      await Deno.writeTextFile(`${dir}/volant.js`, "console.log(1);\n");
      const run = () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "tools/build_guest.ts", "--kernel=debian", out, `${dir}/volant.js`],
          cwd: REPO,
          stdout: "piped",
          stderr: "piped",
        }).output();
      const cold = await run();
      const coldErr = new TextDecoder().decode(cold.stderr);
      equal(cold.code, 0, coldErr);
      const manifest = (await readGuestManifest(out))!;
      equal(manifest.inputs.deno.path, await Deno.realPath(Deno.execPath()));
      for (const line of summary(out, manifest)) ok(coldErr.includes(line), line);
      match(coldErr, /runtime\.erofs +[0-9.]+ MiB {2}built/);
      const warm = await run();
      const warmErr = new TextDecoder().decode(warm.stderr);
      equal(warm.code, 0, warmErr);
      for (const f of GUEST_FILES) match(warmErr, new RegExp(`${f.replace(".", "\\.")} .* reused`));
      ok(!warmErr.includes("building"));
    }),
});

if (!CACHED_KERNEL) console.error(`guest_test: build tests skipped: ${NO_KERNEL_REASON}`);
