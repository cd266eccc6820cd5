import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { moduleLoadOrder, moduleName, parseModulesDep, readModulesDep } from "./modules.ts";
import { CACHED_KERNEL, hasCommand, NO_KERNEL_REASON } from "./testing.ts";

// Lines as depmod wrote them for Debian's 6.1 cloud kernel (order within a line is depmod's).
const SNIPPET = `
kernel/fs/overlayfs/overlay.ko:
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/drivers/acpi/button.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/input/evdev.ko:
kernel/net/core/failover.ko:
`;

function before(order: string[], a: string, b: string): boolean {
  return order.indexOf(a) >= 0 && order.indexOf(a) < order.indexOf(b);
}

Deno.test("parseModulesDep() reads paths and their dependencies", () => {
  const dep = parseModulesDep(SNIPPET);
  equal(dep.size, 13);
  deepEqual(dep.get("kernel/fs/erofs/erofs.ko"), ["kernel/lib/libcrc32c.ko"]);
  deepEqual(dep.get("kernel/drivers/acpi/button.ko"), []);
  throws(() => parseModulesDep("kernel/a.ko kernel/b.ko\n"), /has no ":"/);
});

Deno.test("moduleName() folds dashes and strips .ko", () => {
  equal(moduleName("kernel/drivers/char/hw_random/virtio-rng.ko"), "virtio_rng");
  equal(moduleName("virtio-rng"), "virtio_rng");
  equal(moduleName("kernel/fs/erofs/erofs.ko.zst"), "erofs");
});

Deno.test("moduleLoadOrder() puts every dependency before its user", () => {
  const dep = parseModulesDep(SNIPPET);
  const order = moduleLoadOrder(dep, [
    { name: "virtio_net" },
    { name: "erofs", required: true },
    { name: "virtio_blk", required: true },
    { name: "virtio-rng" },
  ]);
  const names = order.map((m) => m.name);
  deepEqual(names, [
    "failover",
    "net_failover",
    "virtio_ring",
    "virtio",
    "virtio_net",
    "libcrc32c",
    "erofs",
    "virtio_blk",
    "virtio_rng",
  ]);
  for (const [path, needs] of dep) {
    for (const n of needs) {
      if (names.includes(moduleName(path))) ok(before(names, moduleName(n), moduleName(path)));
    }
  }
  // Required-ness flows to dependencies, even those first placed by an optional module.
  const req = Object.fromEntries(order.map((m) => [m.name, m.required]));
  equal(req.virtio_ring, true);
  equal(req.virtio, true);
  equal(req.libcrc32c, true);
  equal(req.failover, false);
  equal(req.virtio_rng, false);
  equal(
    order.find((m) => m.name === "virtio_rng")?.path,
    "kernel/drivers/char/hw_random/virtio-rng.ko",
  );
});

Deno.test("moduleLoadOrder() lists each module once and refuses unknown modules and cycles", () => {
  const dep = parseModulesDep(SNIPPET);
  const names = moduleLoadOrder(dep, [{ name: "virtio_mmio" }, { name: "virtio_blk" }]).map((m) =>
    m.name
  );
  deepEqual(names, ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk"]);
  throws(() => moduleLoadOrder(dep, [{ name: "9pnet" }]), /no module 9pnet/);
  throws(
    () => moduleLoadOrder(parseModulesDep("a.ko: b.ko\nb.ko: a.ko\n"), [{ name: "a" }]),
    /cycle: a.ko -> b.ko -> a.ko/,
  );
  throws(() => moduleLoadOrder(parseModulesDep("a.ko: gone.ko\n"), [{ name: "a" }]), /gone.ko/);
});

Deno.test({
  name: "readModulesDep() runs depmod on a tree without modules.dep" +
    (!CACHED_KERNEL
      ? ` (skipped: ${NO_KERNEL_REASON})`
      : hasCommand("depmod")
      ? ""
      : " (skipped: depmod is missing; apt-get install kmod)"),
  ignore: !CACHED_KERNEL || !hasCommand("depmod"),
  fn: async () => {
    const src = CACHED_KERNEL!.modulesDir;
    const abi = CACHED_KERNEL!.abi;
    const root = await Deno.makeTempDir({ prefix: "volant-modules-" });
    try {
      const dir = `${root}/lib/modules/${abi}`;
      for (const rel of ["kernel/lib/libcrc32c.ko", "kernel/fs/erofs/erofs.ko"]) {
        await Deno.mkdir(`${dir}/${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
        await Deno.copyFile(`${src}/${rel}`, `${dir}/${rel}`);
      }
      const dep = await readModulesDep(dir);
      deepEqual(dep.get("kernel/fs/erofs/erofs.ko"), ["kernel/lib/libcrc32c.ko"]);
      ok((await Deno.stat(`${dir}/modules.dep`)).isFile);
      await rejects(readModulesDep(`${root}/elsewhere`), /not laid out/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "moduleLoadOrder() resolves the stage-0 set against the real kernel" +
    (CACHED_KERNEL ? "" : ` (skipped: ${NO_KERNEL_REASON})`),
  ignore: !CACHED_KERNEL,
  fn: async () => {
    const { STAGE0_MODULES } = await import("./modules.ts");
    const order = moduleLoadOrder(await readModulesDep(CACHED_KERNEL!.modulesDir), STAGE0_MODULES);
    const names = order.map((m) => m.name);
    for (const want of STAGE0_MODULES) ok(names.includes(moduleName(want.name)), want.name);
    ok(before(names, "virtio_ring", "virtio"));
    ok(before(names, "virtio", "virtio_mmio"));
    ok(before(names, "virtio_mmio", "virtio_blk"));
    ok(before(names, "libcrc32c", "erofs"));
    ok(before(names, "failover", "net_failover"));
    ok(before(names, "net_failover", "virtio_net"));
    equal(new Set(names).size, names.length);
  },
});

if (!CACHED_KERNEL) console.error(`modules_test: real-tree tests skipped: ${NO_KERNEL_REASON}`);
