import { deepEqual, equal, match, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import type { VmmJail } from "../jail/types.ts";
import {
  collectSavedState,
  lendFiles,
  requireEmptyDir,
  requireEnterable,
  requireSavedState,
} from "./saved_state.ts";

const root = Deno.uid() === 0;
const OTHER = 990_321; // a uid nobody uses: a jailed VMM's

async function withDir(fn: (dir: string) => Promise<void>, base?: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-saved-", ...(base ? { dir: base } : {}) });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

function code(expected: string, message: RegExp) {
  return (err: VolantError) => {
    equal(err.code, expected, err.message);
    match(err.message, message);
    return true;
  };
}

Deno.test("requireSavedState() names restoreFrom and the first file missing", () =>
  withDir(async (dir) => {
    await rejects(
      requireSavedState(`${dir}/none`, ["vmstate"]),
      code("invalid_argument", /^restoreFrom .*\/none\/vmstate: no such file$/),
    );
    await rejects(requireSavedState("rel/dir", ["a"]), /restoreFrom rel\/dir: not an absolute/);
    await Deno.writeTextFile(`${dir}/vmstate`, "");
    await Deno.mkdir(`${dir}/memory`);
    await rejects(requireSavedState(dir, ["vmstate"]), /vmstate: not a saved state file$/);
    await Deno.writeTextFile(`${dir}/vmstate`, "s");
    await rejects(requireSavedState(dir, ["vmstate", "memory"]), /memory: not a saved state/);
    await Deno.remove(`${dir}/memory`);
    await Deno.writeTextFile(`${dir}/memory`, "m");
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/extra`, "x");
    deepEqual(await requireSavedState(`${dir}/`, ["vmstate", "memory"]), [
      `${dir}/extra`,
      `${dir}/memory`,
      `${dir}/vmstate`,
    ], "every regular file, for the jail to bind");
  }));

Deno.test("requireEmptyDir() takes an existing empty directory only", () =>
  withDir(async (dir) => {
    await requireEmptyDir(dir);
    await rejects(requireEmptyDir(`${dir}/none`), code("invalid_argument", /does not exist/));
    await rejects(requireEmptyDir("state"), /is not an absolute path/);
    await Deno.writeTextFile(`${dir}/f`, "");
    await rejects(requireEmptyDir(`${dir}/f`), /is not a directory/);
    await rejects(requireEmptyDir(dir), /is not empty \(it holds f\)/);
  }));

Deno.test("requireEnterable() checks the search bit that applies to the jail's uid", () =>
  withDir(async (dir) => {
    const jail = { uid: OTHER, gid: OTHER } as VmmJail;
    const st = await Deno.stat(dir);
    const cases: Array<[number, number, number, boolean]> = [
      [st.uid!, st.gid!, 0o750, false], // the daemon's lockRuntimeDir: root:root 0750
      [st.uid!, st.gid!, 0o751, true],
      [st.uid!, OTHER, 0o750, true],
      [OTHER, OTHER, 0o700, true],
      [OTHER, st.gid!, 0o077, false],
    ];
    for (const [uid, gid, mode, ok_] of cases) {
      if (!root && (uid !== st.uid || gid !== st.gid)) continue;
      await Deno.chown(dir, uid, gid);
      await Deno.chmod(dir, mode);
      const result = requireEnterable(dir, jail, "Firecracker");
      if (ok_) await result;
      else {
        await rejects(
          result,
          code("invalid_state", /Firecracker runs as uid 990321 and cannot enter its runtime dir/),
        );
      }
    }
  }));

Deno.test("collectSavedState() moves complete plain files in, private and the daemon's", () =>
  withDir(async (base) => {
    const staging = `${base}/staging`;
    const dir = `${base}/state`;
    await Deno.mkdir(staging);
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${staging}/vmstate`, "state");
    await Deno.writeTextFile(`${staging}/memory`, "memory!", { mode: 0o644 });
    if (root) {
      // As a jailed VMM leaves them: its own directory and files.
      await Deno.chown(staging, OTHER, OTHER);
      await Deno.chown(`${staging}/memory`, OTHER, OTHER);
    }
    const saved = await collectSavedState(staging, dir, ["vmstate", "memory"], "Firecracker");
    deepEqual(saved, { files: ["memory", "vmstate"], bytes: 12 });
    deepEqual(names(staging), []);
    deepEqual(names(dir), ["memory", "vmstate"]);
    for (const name of names(dir)) {
      const info = await Deno.stat(`${dir}/${name}`);
      equal((info.mode ?? 0) & 0o777, 0o600, name);
      deepEqual([info.uid, info.gid], [Deno.uid(), Deno.gid()], name);
    }
    const sealed = await Deno.stat(staging);
    deepEqual([sealed.uid, (sealed.mode ?? 0) & 0o777], [Deno.uid(), 0o700], "staging sealed");
  }));

Deno.test("collectSavedState() refuses links, directories and missing files, leaving nothing", () =>
  withDir(async (base) => {
    const dir = `${base}/state`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${base}/secret`, "host file");
    await Deno.chmod(`${base}/secret`, 0o644);
    const attempts: Array<[string, (staging: string) => Promise<void>, RegExp]> = [
      ["a symlink", (s) => Deno.symlink(`${base}/secret`, `${s}/memory`), /memory .*not a plain/],
      ["a hard link", (s) => Deno.link(`${base}/secret`, `${s}/memory`), /memory .*not a plain/],
      ["a directory", (s) => Deno.mkdir(`${s}/memory`), /memory .*not a plain file/],
      ["no memory", () => Promise.resolve(), /did not write memory \(it wrote vmstate\)/],
    ];
    for (const [what, plant, problem] of attempts) {
      const staging = `${base}/staging`;
      await Deno.mkdir(staging);
      await Deno.writeTextFile(`${staging}/vmstate`, "state");
      await plant(staging);
      await rejects(
        collectSavedState(staging, dir, ["vmstate", "memory"], "Firecracker"),
        code("vmm_failed", problem),
        what,
      );
      deepEqual(names(dir), [], `${what}: nothing moved`);
      await Deno.remove(staging, { recursive: true });
    }
    equal(await Deno.readTextFile(`${base}/secret`), "host file");
    const secret = await Deno.stat(`${base}/secret`);
    deepEqual([(secret.mode ?? 0) & 0o777, secret.uid], [0o644, Deno.uid()], "left alone");
  }));

Deno.test({
  name: "collectSavedState() copies across file systems (a jailed VMM's runtime dir on tmpfs)",
  ignore: !(await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false)),
  fn: () =>
    withDir((shm) =>
      withDir(async (base) => {
        if ((await Deno.stat(shm)).dev === (await Deno.stat(base)).dev) return;
        const staging = `${shm}/staging`;
        await Deno.mkdir(staging);
        await Deno.writeTextFile(`${staging}/vmstate`, "state");
        const memory = await Deno.open(`${staging}/memory`, { write: true, create: true });
        await memory.truncate(8 << 20);
        memory.close();
        const saved = await collectSavedState(staging, base, ["vmstate", "memory"], "CH");
        deepEqual(saved, { files: ["memory", "vmstate"], bytes: 5 + (8 << 20) });
        deepEqual(names(staging), [], "moved, not copied and left");
        equal((await Deno.stat(`${base}/memory`)).size, 8 << 20);
        equal(await Deno.readTextFile(`${base}/vmstate`), "state");
      }), "/dev/shm"),
});

Deno.test({
  name: "lendFiles() gives saved files to a jail's uid and back" +
    (root ? "" : " (skipped: needs root)"),
  ignore: !root,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/a`, "a", { mode: 0o600 });
      await Deno.writeTextFile(`${dir}/b`, "b", { mode: 0o600 });
      await Deno.chown(`${dir}/b`, 0, 12345);
      const giveBack = await lendFiles([`${dir}/a`, `${dir}/b`], OTHER, OTHER);
      for (const f of ["a", "b"]) {
        const info = await Deno.stat(`${dir}/${f}`);
        deepEqual([info.uid, info.gid], [OTHER, OTHER], f);
      }
      await giveBack();
      deepEqual([(await Deno.stat(`${dir}/a`)).uid, (await Deno.stat(`${dir}/a`)).gid], [0, 0]);
      deepEqual([(await Deno.stat(`${dir}/b`)).uid, (await Deno.stat(`${dir}/b`)).gid], [0, 12345]);
      await rejects(lendFiles([`${dir}/a`, `${dir}/none`], OTHER, OTHER), Deno.errors.NotFound);
      equal((await Deno.stat(`${dir}/a`)).uid, 0, "a failed lend gives back what it lent");
    }),
});
