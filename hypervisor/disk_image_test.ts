import { equal, match, ok, rejects } from "node:assert/strict";
import type { VolantError } from "../schema/mod.ts";
import { checkDiskImage, checkOverlay, parseQcow2Header } from "./disk_image.ts";

// Real images from qemu-img (Debian's qemu-utils, which ./volant installs).
async function qemuImg(...args: string[]): Promise<void> {
  const out = await new Deno.Command("qemu-img", { args, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-disk-image-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function refused(pattern: RegExp) {
  return (e: VolantError) => {
    equal(e.code, "invalid_argument");
    match(e.message, pattern);
    return true;
  };
}

Deno.test("checkDiskImage() refuses a qcow2 that names a host file as its backing file", () =>
  withDir(async (dir) => {
    await qemuImg("create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", `${dir}/evil`);
    await rejects(
      () => checkDiskImage(`${dir}/evil`, "qcow2", "disks[0]"),
      refused(/^disks\[0\]: the qcow2 image names a backing file "\/etc\/hostname"; refused/),
    );
  }));

Deno.test("checkDiskImage() refuses a qcow2 with an external data file", () =>
  withDir(async (dir) => {
    await qemuImg(
      "create",
      "-q",
      "-f",
      "qcow2",
      "-o",
      `data_file=${dir}/data.raw`,
      `${dir}/df`,
      "1M",
    );
    await rejects(
      () => checkDiskImage(`${dir}/df`, "qcow2", "rootfs"),
      refused(/^rootfs: the qcow2 image names an external data file ".*data\.raw"/),
    );
    const header = parseQcow2Header(await Deno.readFile(`${dir}/df`));
    ok(header?.dataFile?.endsWith("data.raw"));
  }));

Deno.test("checkDiskImage() accepts a self-contained qcow2 and any raw image; refuses a fake qcow2", () =>
  withDir(async (dir) => {
    await qemuImg("create", "-q", "-f", "qcow2", `${dir}/ok`, "1M");
    await checkDiskImage(`${dir}/ok`, "qcow2", "disks[0]");
    equal(parseQcow2Header(await Deno.readFile(`${dir}/ok`))?.version, 3);
    // A raw disk is opened as raw: even qcow2 bytes in it are only the guest's data.
    await qemuImg("create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", `${dir}/r`);
    await checkDiskImage(`${dir}/r`, "raw", "disks[1]");
    await Deno.writeFile(`${dir}/plain`, new Uint8Array(4096));
    await rejects(
      () => checkDiskImage(`${dir}/plain`, "qcow2", "disks[2]"),
      refused(/^disks\[2\]: declared qcow2, but the file is not a qcow2 image/),
    );
  }));

Deno.test("parseQcow2Header() notices a backing file named beyond what it reads", () => {
  const h = new Uint8Array(112);
  const v = new DataView(h.buffer);
  v.setUint32(0, 0x514649fb);
  v.setUint32(4, 2);
  v.setBigUint64(8, 1n << 40n);
  v.setUint32(16, 11);
  equal(parseQcow2Header(h)?.backingFile, "(a backing file named beyond the header)");
});

Deno.test("checkOverlay() accepts Volant's own overlay and refuses one re-pointed elsewhere", () =>
  withDir(async (dir) => {
    await Deno.writeFile(`${dir}/base.raw`, new Uint8Array(1 << 20));
    await qemuImg("create", "-q", "-f", "qcow2", "-b", `${dir}/base.raw`, "-F", "raw", `${dir}/o`);
    await checkOverlay(`${dir}/o`, `${dir}/base.raw`);
    // Rebased onto a host file behind Volant's back.
    await qemuImg("rebase", "-u", "-b", "/etc/hostname", "-F", "raw", `${dir}/o`);
    await rejects(() => checkOverlay(`${dir}/o`, `${dir}/base.raw`), (e: VolantError) => {
      equal(e.code, "invalid_state");
      match(e.message, /is backed by "\/etc\/hostname", not the cached artifact/);
      return true;
    });
  }));
