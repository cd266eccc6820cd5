/**
 * Kernel module dependencies: parses `modules.dep` (generating it with `depmod -b` when the
 * extracted Debian tree has none, as Debian ships it only after install) and orders a set of
 * wanted modules with everything they depend on, dependencies first, ready for `insmod`.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import { runTool } from "./_tool.ts";

/** Module dependencies: module path (relative to the modules dir) → paths it needs. */
export type ModulesDep = Map<string, string[]>;

/** One module of an ordered load list. */
export interface ModuleToLoad {
  /** Module name as `insmod`/`lsmod` know it (`_` for `-`), e.g. `virtio_rng`. */
  name: string;
  /** Path relative to the modules dir, e.g. `kernel/drivers/char/hw_random/virtio-rng.ko`. */
  path: string;
  /** False when a failure to load it must not stop the boot. */
  required: boolean;
}

/** A module wanted in the guest; its dependencies are added by {@linkcode moduleLoadOrder}. */
export interface WantedModule {
  /** Module name; `-` and `_` are the same (`virtio-rng` = `virtio_rng`). */
  name: string;
  /** A required module is needed to reach the runtime disk; default false. */
  required?: boolean;
}

/**
 * The modules stage 0 loads: the disk path (virtio-mmio, virtio-blk, erofs) is required,
 * the rest (network, overlay, ACPI power button as an input event, console port, entropy)
 * is optional.
 */
export const STAGE0_MODULES: readonly WantedModule[] = [
  { name: "virtio_mmio", required: true },
  { name: "virtio_blk", required: true },
  { name: "erofs", required: true },
  { name: "virtio_net" },
  { name: "overlay" },
  { name: "button" },
  { name: "evdev" },
  { name: "virtio_console" },
  { name: "virtio_rng" },
];

/** `virtio-rng` → `virtio_rng` (the kernel treats both spellings as one name). */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/**
 * Parses the text of `modules.dep` (`kernel/a.ko: kernel/b.ko kernel/c.ko` per line).
 *
 * @example
 * ```ts
 * import { parseModulesDep } from "./modules.ts";
 * const dep = parseModulesDep("kernel/erofs.ko: kernel/libcrc32c.ko\nkernel/libcrc32c.ko:\n");
 * console.assert(dep.get("kernel/erofs.ko")![0] === "kernel/libcrc32c.ko");
 * ```
 */
export function parseModulesDep(text: string): ModulesDep {
  const dep: ModulesDep = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) {
      throw new VolantError("invalid_argument", `modules.dep line has no ":": ${line}`);
    }
    const needs = line.slice(colon + 1).trim();
    dep.set(line.slice(0, colon).trim(), needs === "" ? [] : needs.split(/\s+/));
  }
  return dep;
}

/**
 * Orders `wanted` and their dependencies (transitively) so each module comes after what it
 * needs; among independent modules the order of `wanted` is kept. A dependency of a required
 * module is required too. Throws `kernel_not_found` naming a module the tree does not have.
 *
 * @example
 * ```ts
 * import { moduleLoadOrder, parseModulesDep } from "./modules.ts";
 * const dep = parseModulesDep(
 *   "k/virtio_blk.ko: k/virtio.ko k/virtio_ring.ko\nk/virtio.ko: k/virtio_ring.ko\nk/virtio_ring.ko:\n",
 * );
 * const names = moduleLoadOrder(dep, [{ name: "virtio_blk" }]).map((m) => m.name);
 * console.assert(names.join(" ") === "virtio_ring virtio virtio_blk");
 * ```
 */
export function moduleLoadOrder(dep: ModulesDep, wanted: readonly WantedModule[]): ModuleToLoad[] {
  const byName = new Map<string, string>();
  for (const path of dep.keys()) byName.set(moduleName(path), path);
  const order: ModuleToLoad[] = [];
  const placed = new Map<string, ModuleToLoad>();
  const visiting = new Set<string>();
  const visit = (path: string, required: boolean, chain: string[]) => {
    const done = placed.get(path);
    if (done) {
      if (required) done.required = true;
      for (const needed of dep.get(path) ?? []) if (required) visit(needed, true, chain);
      return;
    }
    if (visiting.has(path)) {
      throw new VolantError(
        "kernel_not_found",
        `modules.dep has a dependency cycle: ${[...chain, path].join(" -> ")}`,
      );
    }
    const needs = dep.get(path);
    if (needs === undefined) {
      throw new VolantError(
        "kernel_not_found",
        `modules.dep names ${path} (needed by ${chain.at(-1)}) but has no entry for it`,
      );
    }
    visiting.add(path);
    for (const needed of needs) visit(needed, required, [...chain, path]);
    visiting.delete(path);
    const entry = { name: moduleName(path), path, required };
    placed.set(path, entry);
    order.push(entry);
  };
  for (const want of wanted) {
    const path = byName.get(moduleName(want.name));
    if (!path) {
      throw new VolantError(
        "kernel_not_found",
        `The kernel has no module ${want.name} (not in modules.dep); is it built in or a different kernel?`,
        { module: want.name },
      );
    }
    visit(path, want.required ?? false, []);
  }
  return order;
}

/**
 * Reads `<modulesDir>/modules.dep`, running `depmod -b <root> <abi>` first when it is missing
 * (`modulesDir` must be `<root>/lib/modules/<abi>`).
 *
 * @example
 * ```ts ignore
 * const dep = await readModulesDep("/var/lib/volant/guest/pkg/lib/modules/6.1.0-56-cloud-amd64");
 * ```
 */
export async function readModulesDep(modulesDir: string): Promise<ModulesDep> {
  const file = `${modulesDir}/modules.dep`;
  try {
    return parseModulesDep(await Deno.readTextFile(file));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const match = modulesDir.replace(/\/+$/, "").match(/^(.*)\/lib\/modules\/([^/]+)$/);
  if (!match) {
    throw new VolantError(
      "invalid_argument",
      `Modules dir ${modulesDir} has no modules.dep and is not laid out as <root>/lib/modules/<abi>`,
    );
  }
  await runTool("depmod", ["-b", match[1] || "/", match[2]!], { apt: "kmod" });
  return parseModulesDep(await Deno.readTextFile(file));
}
