/**
 * The uids (and equal gids) VMMs run as: one per VM from `security.uid_range` (`[start, count]`),
 * a range no user or group of the host may overlap.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";

/** `security.uid_range`: `count` ids from `start`. */
export interface UidRange {
  start: number;
  count: number;
}

/** The largest id a range may reach (`(uid_t)-1` is "no change" to the kernel). */
const ID_MAX = 0xfffffffe;

function ids(text: string): Array<{ name: string; id: number }> {
  const out: Array<{ name: string; id: number }> = [];
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 3 || line.startsWith("#")) continue;
    const id = Number(fields[2]);
    if (Number.isInteger(id)) out.push({ name: fields[0]!, id });
  }
  return out;
}

function describe(range: UidRange): string {
  return `[${range.start}, ${range.count}] (ids ${range.start}-${range.start + range.count - 1})`;
}

/**
 * Refuses (`invalid_argument`, naming `security.uid_range`) a range that reaches root, `nobody`
 * or past the largest uid, or that holds a user of `passwd` or a group of `group` (the texts of
 * `/etc/passwd` and `/etc/group`).
 *
 * @example
 * ```ts
 * import { checkUidRange } from "./uid_range.ts";
 * checkUidRange({ start: 900000, count: 100 }, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
 * let refused = false;
 * try {
 *   checkUidRange({ start: 1000, count: 10 }, "ann:x:1001:1001::/home/ann:/bin/sh\n", "");
 * } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function checkUidRange(range: UidRange, passwd: string, group: string): void {
  const refuse = (why: string) =>
    new VolantError(
      "invalid_argument",
      `security.uid_range ${describe(range)} ${why}; pick a range no host user or group uses`,
      { setting: "security.uid_range", start: range.start, count: range.count },
    );
  if (!Number.isInteger(range.start) || !Number.isInteger(range.count) || range.count < 1) {
    throw refuse("must be two integers, a start and a count of at least 1");
  }
  if (range.start < 1 || range.start + range.count - 1 > ID_MAX) {
    throw refuse(`must lie within 1-${ID_MAX}`);
  }
  const inside = (id: number) => id >= range.start && id < range.start + range.count;
  if (inside(65534)) throw refuse("holds 65534 (nobody)");
  const user = ids(passwd).find((u) => inside(u.id));
  if (user) throw refuse(`holds user ${user.name} (uid ${user.id}) of /etc/passwd`);
  const grp = ids(group).find((g) => inside(g.id));
  if (grp) throw refuse(`holds group ${grp.name} (gid ${grp.id}) of /etc/group`);
}

/**
 * Reads `/etc/passwd` and `/etc/group` and checks the range against them (see
 * {@linkcode checkUidRange}).
 *
 * @example
 * ```ts ignore
 * import { checkUidRangeOnHost } from "./uid_range.ts";
 * await checkUidRangeOnHost({ start: 900000, count: 10000 });
 * ```
 */
export async function checkUidRangeOnHost(range: UidRange): Promise<void> {
  const read = (path: string) => Deno.readTextFile(path).catch(() => "");
  checkUidRange(range, await read("/etc/passwd"), await read("/etc/group"));
}

/**
 * The lowest id of `range` not in `taken`; `invalid_state` naming the setting when every one
 * is taken.
 *
 * @example
 * ```ts
 * import { allocateUid } from "./uid_range.ts";
 * console.assert(allocateUid({ start: 100, count: 3 }, new Set([100, 102])) === 101);
 * ```
 */
export function allocateUid(range: UidRange, taken: ReadonlySet<number>): number {
  for (let id = range.start; id < range.start + range.count; id++) {
    if (!taken.has(id)) return id;
  }
  throw new VolantError(
    "invalid_state",
    `security.uid_range ${describe(range)} is exhausted: every id runs a VM's VMM; delete ` +
      "VMs or widen the range",
    { setting: "security.uid_range", start: range.start, count: range.count },
  );
}
