import { deepEqual, equal, ok } from "node:assert/strict";
import { ArtifactCache, createOverlay, overlayInfo } from "./mod.ts";
import { checksumOf, rejectsWith, withTempDir } from "./_testing.ts";

const BASE_SIZE = 32 * 1024 * 1024;
const FILL = 0xa7;

function run(program: string, args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
}

async function cachedBase(dir: string): Promise<{ cache: ArtifactCache; path: string }> {
  const bytes = new Uint8Array(BASE_SIZE).fill(FILL);
  await Deno.writeFile(`${dir}/rootfs.img`, bytes);
  const cache = new ArtifactCache(`${dir}/state`);
  const { path } = await cache.fetchArtifact(`${dir}/rootfs.img`, checksumOf(bytes));
  return { cache, path };
}

async function qemuIo(image: string, command: string): Promise<Deno.CommandOutput> {
  return await run("qemu-io", ["-f", "qcow2", "-c", command, image]);
}

Deno.test("createOverlay() makes a tiny qcow2 overlay backed by the cached blob", async () => {
  await withTempDir(async (dir) => {
    const { cache, path: base } = await cachedBase(dir);
    const overlay = `${dir}/web-rootfs.qcow2`;
    const info = await createOverlay(base, overlay, "raw");

    // qemu-img itself reports the backing file.
    const raw = await run("qemu-img", ["info", "-U", "--output=json", overlay]);
    equal(raw.success, true, new TextDecoder().decode(raw.stderr));
    const json = JSON.parse(new TextDecoder().decode(raw.stdout));
    equal(json["format"], "qcow2");
    equal(json["backing-filename"], base);
    equal(json["backing-filename-format"], "raw");
    equal(json["virtual-size"], BASE_SIZE);
    deepEqual(
      { ...info, diskBytes: 0 },
      {
        path: overlay,
        format: "qcow2",
        backingFile: base,
        backingFormat: "raw",
        virtualSize: BASE_SIZE,
        diskBytes: 0,
      },
    );
    const baseBytes = ((await Deno.stat(base)).blocks ?? 0) * 512;
    console.log(`overlay on disk: ${info.diskBytes} B; base on disk: ${baseBytes} B`);
    ok(baseBytes >= BASE_SIZE);
    ok(info.diskBytes > 0 && info.diskBytes * 50 < baseBytes, `overlay ${info.diskBytes} B`);
    equal((await Deno.stat(overlay)).mode! & 0o777, 0o600);

    // Writes land in the overlay; untouched clusters still read the base; the blob is unchanged.
    const write = await qemuIo(overlay, "write -P 0x5a 0 1M");
    equal(write.success, true, new TextDecoder().decode(write.stderr));
    ok((await qemuIo(overlay, "read -P 0x5a 0 1M")).success);
    const below = await qemuIo(overlay, `read -P 0x${FILL.toString(16)} 1M 64k`);
    equal(below.success, true, new TextDecoder().decode(below.stdout));
    const grown = await overlayInfo(overlay);
    ok(grown.diskBytes >= 1024 * 1024, `overlay grew to ${grown.diskBytes} B`);
    ok((await Deno.readFile(base)).every((x) => x === FILL), "the base blob changed");
    equal(
      (await cache.verifyArtifact(checksumOf(new Uint8Array(BASE_SIZE).fill(FILL)))).size,
      BASE_SIZE,
    );
  });
});

Deno.test("createOverlay() accepts a qcow2 base", async () => {
  await withTempDir(async (dir) => {
    const made = await run("qemu-img", ["create", "-q", "-f", "qcow2", `${dir}/b.qcow2`, "64M"]);
    equal(made.success, true);
    const bytes = await Deno.readFile(`${dir}/b.qcow2`);
    const cache = new ArtifactCache(`${dir}/state`);
    const base = await cache.fetchArtifact(`${dir}/b.qcow2`, checksumOf(bytes));
    const info = await createOverlay(base.path, `${dir}/o.qcow2`, "qcow2");
    equal(info.backingFile, base.path);
    equal(info.backingFormat, "qcow2");
    equal(info.virtualSize, 64 * 1024 * 1024);
    const bigger = await createOverlay(base.path, `${dir}/o2.qcow2`, "qcow2", {
      virtualSize: 128 * 1024 * 1024,
    });
    equal(bigger.virtualSize, 128 * 1024 * 1024);
  });
});

Deno.test("createOverlay() never overwrites and names bad arguments", async () => {
  await withTempDir(async (dir) => {
    const { path: base } = await cachedBase(dir);
    const overlay = `${dir}/o.qcow2`;
    await createOverlay(base, overlay, "raw");
    const written = await qemuIo(overlay, "write -P 0x11 0 64k");
    equal(written.success, true);
    const before = await Deno.readFile(overlay);
    await rejectsWith(createOverlay(base, overlay, "raw"), "already_exists", overlay);
    deepEqual(await Deno.readFile(overlay), before);
    await rejectsWith(createOverlay(`${dir}/nope`, `${dir}/x.qcow2`, "raw"), "not_found", "nope");
    await rejectsWith(
      createOverlay("rel/base", `${dir}/x.qcow2`, "raw"),
      "invalid_argument",
      "base",
    );
    await rejectsWith(
      createOverlay(base, `${dir}/x.qcow2`, "vmdk" as "raw"),
      "invalid_argument",
      "format",
    );
    await rejectsWith(
      createOverlay(base, `${dir}/x.qcow2`, "raw", { qemuImg: `${dir}/no-qemu-img` }),
      "hypervisor_unavailable",
      "qemu-utils",
    );
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    deepEqual(names.sort(), ["o.qcow2", "rootfs.img", "state"]);
  });
});
