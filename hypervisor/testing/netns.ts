/**
 * Network namespaces for tests that boot VMs: every VMM a test starts runs inside a namespace
 * the test created (`ip netns add volant-t-<random>`) and deletes afterwards, so no tap or
 * address ever touches the host's root namespace.
 *
 * @module
 */

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * Creates a fresh namespace with `lo` up and resolves to its name.
 *
 * @example
 * ```ts ignore
 * import { createNetns, deleteNetns } from "./netns.ts";
 * const ns = await createNetns();
 * try {
 *   // run VMMs with the prefix ["ip", "netns", "exec", ns]
 * } finally {
 *   await deleteNetns(ns);
 * }
 * ```
 */
export async function createNetns(): Promise<string> {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  const name = `volant-t-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  await ip(["netns", "add", name]);
  try {
    await ip(["-n", name, "link", "set", "lo", "up"]);
  } catch (err) {
    await deleteNetns(name);
    throw err;
  }
  return name;
}

/**
 * Deletes a namespace made by {@linkcode createNetns} (ignores one that is already gone).
 *
 * @example
 * ```ts ignore
 * import { deleteNetns } from "./netns.ts";
 * await deleteNetns("volant-t-0a1b2c3d");
 * ```
 */
export async function deleteNetns(name: string): Promise<void> {
  if (!name.startsWith("volant-t-")) throw new Error(`refusing to delete namespace ${name}`);
  await ip(["netns", "del", name]).catch(() => {});
}

/**
 * Creates a tap device `tap` (up) inside namespace `ns`; `owner` (a uid, and the gid of the same
 * number) may open it without privileges.
 *
 * @example
 * ```ts ignore
 * import { createNetns, createTap } from "./netns.ts";
 * await createTap(await createNetns(), "vtap0");
 * ```
 */
export async function createTap(ns: string, tap: string, owner?: number): Promise<void> {
  const user = owner === undefined ? [] : ["user", String(owner), "group", String(owner)];
  await ip(["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap", ...user]);
  await ip(["-n", ns, "link", "set", tap, "up"]);
}

/**
 * The reason netns tests cannot run here, or null when `ip netns` works.
 *
 * @example
 * ```ts ignore
 * import { netnsUnavailable } from "./netns.ts";
 * const reason = await netnsUnavailable();
 * Deno.test({
 *   name: "boots in a namespace" + (reason === null ? "" : ` (skipped: ${reason})`),
 *   ignore: reason !== null,
 *   fn: () => {},
 * });
 * ```
 */
export async function netnsUnavailable(): Promise<string | null> {
  try {
    const ns = await createNetns();
    await deleteNetns(ns);
    return null;
  } catch (err) {
    return `cannot create a network namespace (root and iproute2 needed): ${
      (err as Error).message
    }`;
  }
}
