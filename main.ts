/**
 * Multi-call entry point: `volantd`, `volar` and `kestrel` are one program. The role is the
 * executable's name (a symlink or launcher called `volar`) or, failing that, the first argument
 * (`deno run -A main.ts volar vms list`). Each role is loaded lazily so the guest never runs the
 * daemon's code.
 *
 * @module
 */

/** The three programs this entry point can be. */
export type Role = "volantd" | "volar" | "kestrel";

const ROLES: readonly Role[] = ["volantd", "volar", "kestrel"];

/**
 * Picks the role from the executable name, `VOLANT_ROLE`, or the first argument.
 *
 * @example
 * ```ts
 * import { pickRole } from "./main.ts";
 * const r = pickRole("/usr/bin/deno", ["volar", "vms", "list"], undefined);
 * console.assert(r?.role === "volar" && r.args.length === 2);
 * ```
 */
export function pickRole(
  execPath: string,
  args: string[],
  envRole: string | undefined,
): { role: Role; args: string[] } | undefined {
  const base = execPath.split("/").pop() ?? "";
  const byName = ROLES.find((r) => r === base);
  if (byName) return { role: byName, args };
  const byEnv = ROLES.find((r) => r === envRole);
  if (byEnv) return { role: byEnv, args };
  const first = ROLES.find((r) => r === args[0]);
  if (first) return { role: first, args: args.slice(1) };
  return undefined;
}

async function run(role: Role, args: string[]): Promise<number> {
  switch (role) {
    case "volantd":
      return (await import("./daemon/main.ts")).main(args);
    case "volar":
      return (await import("./cli/main.ts")).main(args);
    case "kestrel":
      return (await import("./agent/main.ts")).main(args);
  }
}

if (import.meta.main) {
  const picked = pickRole(Deno.execPath(), Deno.args, Deno.env.get("VOLANT_ROLE"));
  if (!picked) {
    console.error(
      "Usage: volant <volantd|volar|kestrel> [args...]\n" +
        "  (or call it through a launcher named volantd, volar or kestrel)",
    );
    Deno.exit(2);
  }
  Deno.exit(await run(picked.role, picked.args));
}
