/**
 * The appliance's file tree while it is being assembled: members by guest path, each with the
 * config key it came from (for error messages), conflicts between sources detected as they are
 * added, and path resolution through the tree's own symlinks. Internal to the builder.
 *
 * @module
 */
import type { CpioEntry } from "../kernels/mod.ts";
import { VolantError } from "../schema/mod.ts";

/** One member of the tree. */
export interface TreeNode {
  /** The archive member (its `path` is relative: `usr/bin/app`). */
  entry: CpioEntry;
  /** The config key it came from, as written in the config (`mappings."./www"`). */
  origin: string;
  /** A parent directory added because something below it was added. */
  implicit: boolean;
  /** For files: the host file the data was read from (for `$ORIGIN`). */
  host?: string;
}

/** What {@linkcode Tree.resolve} returns. */
export interface Resolved {
  /** The path with every symlink in the tree followed (`""` is the root). */
  path: string;
  /** The member at that path, if any. */
  node?: TreeNode;
}

/** The guest path of a relative member path: `usr/bin/app` → `/usr/bin/app`. */
export function guestPath(path: string): string {
  return `/${path}`;
}

/** Splits a guest path into its segments (no empty or `.` segments; `..` kept). */
export function segments(path: string): string[] {
  return path.split("/").filter((s) => s !== "" && s !== ".");
}

/** Stage 0's script: the appliance must never hold it. */
const RESERVED = "init";
const MAX_LINKS = 40;

/** The members of an appliance under construction. */
export class Tree {
  readonly #file: string;
  readonly #nodes = new Map<string, TreeNode>();

  /** `file` (the config file) prefixes every error message. */
  constructor(file: string) {
    this.#file = file;
  }

  /** An `invalid_argument` error about the config key `origin`. */
  error(origin: string, message: string, details: Record<string, unknown> = {}): VolantError {
    return new VolantError("invalid_argument", `${this.#file}: ${origin}: ${message}`, {
      file: this.#file,
      field: origin,
      ...details,
    });
  }

  /** The member at a relative path. */
  get(path: string): TreeNode | undefined {
    return this.#nodes.get(path);
  }

  /** Every member, sorted by path. */
  nodes(): TreeNode[] {
    return [...this.#nodes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, n]) => n);
  }

  /** Number of members. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Adds a member. Its parents become directories (implicit ones when absent); a parent that
   * is a file or symlink, two sources putting something other than two directories at one
   * path, or anything at `/init` is an error naming both config keys.
   */
  put(entry: CpioEntry, origin: string, host?: string): void {
    const parts = segments(entry.path);
    const path = parts.join("/");
    if (path === "") throw this.error(origin, "cannot put anything but a directory at /");
    if (path === RESERVED) {
      throw this.error(
        origin,
        "puts a file at /init, which belongs to Volant's stage 0 (it runs first and hands " +
          'over to your program): put your init elsewhere, e.g. /sbin/init, with init.mode = "custom" ' +
          'and init.path = "/sbin/init"',
      );
    }
    if (parts[0] === ".volant" || parts[0] === "volant") {
      throw this.error(
        origin,
        `puts something at /${path}: /.volant and /volant belong to Volant (stage 0's tools and ` +
          "the boot config); put your files elsewhere",
      );
    }
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const existing = this.#nodes.get(parent);
      if (!existing) {
        this.#nodes.set(parent, {
          entry: { type: "dir", path: parent },
          origin,
          implicit: true,
        });
      } else if (existing.entry.type !== "dir") {
        throw this.error(
          origin,
          `puts ${guestPath(path)} below ${guestPath(parent)}, which ${existing.origin} makes a ` +
            `${existing.entry.type}, not a directory`,
        );
      }
    }
    const node: TreeNode = { entry: { ...entry, path }, origin, implicit: false, host };
    const existing = this.#nodes.get(path);
    if (existing) {
      if (existing.entry.type === "dir" && entry.type === "dir") {
        if (existing.implicit) this.#nodes.set(path, node);
        return;
      }
      const what = existing.implicit ? "needs as a directory" : `puts a ${existing.entry.type}`;
      throw this.error(
        origin,
        `puts a ${entry.type} at ${guestPath(path)}, where ${existing.origin} ${what}`,
      );
    }
    this.#nodes.set(path, node);
  }

  /**
   * Adds a member unless its path (followed through the tree's symlinks) already holds one;
   * parents that are symlinks in the tree are followed. Returns the path used, or `undefined`
   * when something was already there.
   */
  ensure(entry: CpioEntry, origin: string, host?: string): string | undefined {
    const resolved = this.resolve(entry.path);
    if (resolved.node || resolved.path === "") return undefined;
    this.put({ ...entry, path: resolved.path }, origin, host);
    return resolved.path;
  }

  /**
   * Follows the tree's symlinks along `path` (relative or absolute, `..` allowed) the way the
   * guest kernel would once the archive is unpacked at `/`.
   */
  resolve(path: string, followLast = true): Resolved {
    let todo = segments(path);
    const done: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const part = todo.shift()!;
      if (part === "..") {
        done.pop();
        continue;
      }
      const node = this.#nodes.get([...done, part].join("/"));
      if (node?.entry.type === "symlink" && (todo.length > 0 || followLast)) {
        if (++links > MAX_LINKS) {
          throw this.error(node.origin, `too many levels of symlinks at ${guestPath(path)}`);
        }
        if (node.entry.target.startsWith("/")) done.length = 0;
        todo = [...segments(node.entry.target), ...todo];
        continue;
      }
      done.push(part);
    }
    const resolved = done.join("/");
    return { path: resolved, node: this.#nodes.get(resolved) };
  }

  /** The archive members, sorted by path. */
  entries(): CpioEntry[] {
    return this.nodes().map((n) => n.entry);
  }
}
