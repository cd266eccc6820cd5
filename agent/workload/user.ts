/**
 * The manifest's `workload.user` as numeric ids: `"uid"`, `"uid:gid"` or a user name looked up
 * in the workload root's `/etc/passwd`.
 *
 * @module
 */
import { VolantError } from "../../schema/error.ts";

/** Numeric user and group ids a workload runs as. */
export interface UserIds {
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
}

/** One `/etc/passwd` entry (the fields kestrel uses). */
export interface PasswdEntry {
  /** Login name. */
  name: string;
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Home directory. */
  home: string;
}

/**
 * Parses `/etc/passwd` text; malformed lines and comments are skipped.
 *
 * @example
 * ```ts
 * import { parsePasswd } from "./user.ts";
 * const [www] = parsePasswd("www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n");
 * console.assert(www?.uid === 33 && www.home === "/var/www");
 * ```
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 7 || f[0] === "" || !isId(f[2]) || !isId(f[3])) continue;
    out.push({ name: f[0] ?? "", uid, gid, home: f[5] ?? "" });
  }
  return out;
}

function isId(text: string | undefined): boolean {
  return text !== undefined && /^\d{1,10}$/.test(text) && Number(text) <= 0xffffffff;
}

/**
 * Resolves `user` against `passwd` (the text of the root's `/etc/passwd`, `undefined` when
 * there is none): `"uid:gid"` as written; `"uid"` with the group of that uid's passwd entry,
 * or gid = uid when it has none (never group 0 by accident); a name through its entry. Throws
 * `invalid_argument` naming `workload.user` when a name is unknown or an id is out of range.
 *
 * @example
 * ```ts
 * import { resolveUser } from "./user.ts";
 * const passwd = "web:x:1000:1001::/home/web:/bin/sh\n";
 * console.assert(resolveUser("web", passwd).gid === 1001);
 * console.assert(resolveUser("1000", passwd).gid === 1001);
 * console.assert(resolveUser("7:8", undefined).gid === 8);
 * console.assert(resolveUser("7", undefined).gid === 7);
 * ```
 */
export function resolveUser(
  user: string,
  passwd: string | undefined,
  where = "/etc/passwd",
): UserIds {
  const entries = passwd === undefined ? [] : parsePasswd(passwd);
  const ids = /^(\d+)(?::(\d+))?$/.exec(user);
  if (ids !== null) {
    const [uidText = "", gidText] = [ids[1], ids[2]];
    if (!isId(uidText) || (gidText !== undefined && !isId(gidText))) {
      throw new VolantError(
        "invalid_argument",
        `workload.user ${JSON.stringify(user)}: ids must be at most 4294967295`,
        { field: "workload.user", user },
      );
    }
    const uid = Number(uidText);
    if (gidText !== undefined) return { uid, gid: Number(gidText) };
    return { uid, gid: entries.find((e) => e.uid === uid)?.gid ?? uid };
  }
  const entry = entries.find((e) => e.name === user);
  if (entry === undefined) {
    throw new VolantError(
      "invalid_argument",
      passwd === undefined
        ? `workload.user ${JSON.stringify(user)}: ${where} does not exist in the workload's ` +
          "root; give a numeric uid or uid:gid, or add the user to the image"
        : `workload.user ${JSON.stringify(user)}: no such user in ${where}; give a numeric ` +
          "uid or uid:gid, or add the user to the image",
      { field: "workload.user", user, passwd: where },
    );
  }
  return { uid: entry.uid, gid: entry.gid };
}
