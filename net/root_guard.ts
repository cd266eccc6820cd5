/**
 * Test helper: a snapshot of what the host-network tests must never change in the root
 * network namespace (its links, its nftables ruleset, its IPv4 forwarding switch), taken at
 * the start of a test file and compared by the file's last test.
 *
 * @module
 */

function run(cmd: string, args: string[]): string {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const text = new TextDecoder();
    return out.success ? text.decode(out.stdout) : `${cmd} failed: ${text.decode(out.stderr)}`;
  } catch (err) {
    return `${cmd} unavailable: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** The root namespace's state as comparable values (read from this thread's namespace). */
export interface RootSnapshot {
  /** `ifindex:name:flags` of every link, sorted. */
  links: string[];
  /** `nft list ruleset` output. */
  ruleset: string;
  /** `/proc/sys/net/ipv4/ip_forward`. */
  ipForward: string;
}

/**
 * Reads the snapshot. Call it from the JS thread outside any `withNetns`.
 *
 * @example
 * ```ts ignore
 * import { rootSnapshot } from "./root_guard.ts";
 * const before = rootSnapshot();
 * ```
 */
export function rootSnapshot(): RootSnapshot {
  const links = JSON.parse(run("ip", ["-j", "link", "show"]) || "[]") as {
    ifindex: number;
    ifname: string;
  }[];
  return {
    links: links.map((l) => `${l.ifindex}:${l.ifname}`).sort(),
    ruleset: run("nft", ["list", "ruleset"]),
    ipForward: Deno.readTextFileSync("/proc/sys/net/ipv4/ip_forward").trim(),
  };
}
