import { deepEqual, equal, match, rejects } from "node:assert/strict";
import { fakeSystem } from "./_fake_system.ts";
import { assembleImageRoot, IMAGE_LAYER_DIR, imageRootMounts } from "./image_root.ts";
import { MS_RDONLY } from "./libc.ts";

Deno.test("imageRootMounts(): the image read-only, the writable disk, then the overlay of both", () => {
  const [lower, upper, overlay] = imageRootMounts(
    { lower: "/dev/vdb", upper: "/dev/vdc" },
    "/run/volant/image",
  );
  deepEqual([lower!.source, lower!.fstype, lower!.flags & MS_RDONLY], ["/dev/vdb", "erofs", 1]);
  deepEqual([upper!.source, upper!.fstype], ["/dev/vdc", "ext4"]);
  equal(overlay!.target, "/run/volant/image");
  equal(
    overlay!.data,
    `lowerdir=${IMAGE_LAYER_DIR}/image,upperdir=${IMAGE_LAYER_DIR}/writable/data,` +
      `workdir=${IMAGE_LAYER_DIR}/writable/work`,
  );
  equal(
    imageRootMounts({ lower: "/dev/vdb", lower_fstype: "ext4", upper: "/dev/vdc" }, "/r")[0]!
      .fstype,
    "ext4",
  );
});

Deno.test("assembleImageRoot() mounts in order and writes /etc/hostname and /etc/hosts", async () => {
  const target = await Deno.makeTempDir({ prefix: "volant-image-root-" });
  try {
    const system = fakeSystem({ paths: ["/dev/vdb", "/dev/vdc"] });
    await assembleImageRoot(system, { lower: "/dev/vdb", upper: "/dev/vdc" }, target, {
      hostname: "web",
      ip: "192.168.127.9",
    });
    deepEqual(system.calls.filter((c) => c.startsWith("mount")), [
      `mount erofs ${IMAGE_LAYER_DIR}/image`,
      `mount ext4 ${IMAGE_LAYER_DIR}/writable`,
      `mount overlay ${target}`,
    ]);
    equal(await Deno.readTextFile(`${target}/etc/hostname`), "web\n");
    match(await Deno.readTextFile(`${target}/etc/hosts`), /^192\.168\.127\.9\tweb$/m);
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("assembleImageRoot() names a disk that never appears and mounts nothing", async () => {
  const system = fakeSystem({ paths: ["/dev/vdb"] });
  await rejects(
    assembleImageRoot(system, { lower: "/dev/vdb", upper: "/dev/vdc" }, "/nowhere", {
      hostname: "web",
    }, { deviceTimeoutMs: 50 }),
    /disk \/dev\/vdc did not appear within 50 ms/,
  );
  equal(system.calls.filter((c) => c.startsWith("mount")).length, 0);
});

Deno.test("assembleImageRoot() tries erofs, ext4 and squashfs for a lower layer of unknown type", async () => {
  const target = await Deno.makeTempDir({ prefix: "volant-image-root-" });
  try {
    const system = fakeSystem({ paths: ["/dev/vdb", "/dev/vdc"] });
    const tried: string[] = [];
    const mount = system.mount;
    system.mount = (spec) => {
      if (spec.target === `${IMAGE_LAYER_DIR}/image`) {
        tried.push(spec.fstype);
        if (spec.fstype !== "ext4") throw new Error("EINVAL");
      }
      mount(spec);
    };
    await assembleImageRoot(system, { lower: "/dev/vdb", upper: "/dev/vdc" }, target, {
      hostname: "web",
    });
    deepEqual(tried, ["erofs", "ext4"]);
    equal(system.calls.filter((c) => c.startsWith("mount")).at(-1), `mount overlay ${target}`);
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});
