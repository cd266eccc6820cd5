/**
 * The cache of KVM probe verdicts (`hypervisor.boot_verdicts`, default
 * `<state_dir>/boot-verdicts.json`, mode 0600): one entry per set of {@linkcode VerdictInputs} —
 * the VMM binary's sha256, the guest kernel's sha256, the host kernel, the KVM device and
 * modules, and the probe's own version. A change to any of them misses the cache, so the next
 * start probes again.
 *
 * The file is written whole to a temporary name and renamed (a `kill -9` leaves the old file or
 * the new one, never half of one). A file that is too large, not JSON or not of this shape is
 * reported as a problem and replaced at the next write; it never stops the daemon.
 *
 * @module
 */
import { z } from "zod";
import { sha256Digest } from "../../images/digest.ts";

/** Bumped whenever the probe guest or its marker changes: older verdicts no longer count. */
export const PROBE_VERSION = 1;

/** The largest verdict file read; larger ones are treated as corrupt. */
const MAX_FILE_BYTES = 256 * 1024;
/** Entries kept (the newest); one per VMM × kernel × host combination seen. */
const MAX_ENTRIES = 32;

/** What a verdict depends on. */
export const VerdictInputs = z.strictObject({
  probe_version: z.number().int(),
  driver: z.string(),
  binary: z.string(),
  binary_sha256: z.string(),
  accel: z.enum(["kvm", "tcg"]),
  kernel: z.string(),
  kernel_sha256: z.string(),
  host_kernel: z.string(),
  kvm_device: z.string().nullable(),
  kvm_modules: z.array(z.string()),
});
/** One {@linkcode VerdictInputs}. */
export type VerdictInputs = z.infer<typeof VerdictInputs>;

/** One cached verdict. */
export const VerdictEntry = z.strictObject({
  key: z.string(),
  inputs: VerdictInputs,
  ok: z.boolean(),
  ms: z.number().int().nonnegative(),
  reason: z.string().nullable(),
  checked_at: z.string(),
});
/** One {@linkcode VerdictEntry}. */
export type VerdictEntry = z.infer<typeof VerdictEntry>;

const VerdictFile = z.strictObject({
  v: z.literal(1),
  verdicts: z.array(VerdictEntry).max(MAX_ENTRIES * 4),
});

/**
 * The cache key of `inputs`: the sha256 of their JSON with sorted keys.
 *
 * @example
 * ```ts
 * import { verdictKey } from "./verdicts.ts";
 * const a = { probe_version: 1, driver: "qemu", binary: "/usr/bin/qemu-system-x86_64",
 *   binary_sha256: "sha256:aa", accel: "kvm" as const, kernel: "bzImage-volant",
 *   kernel_sha256: "sha256:bb", host_kernel: "6.1.0", kvm_device: "10:232", kvm_modules: [] };
 * console.assert(verdictKey(a) !== verdictKey({ ...a, kernel_sha256: "sha256:cc" }));
 * ```
 */
export function verdictKey(inputs: VerdictInputs): string {
  const sorted = Object.fromEntries(Object.entries(inputs).sort(([a], [b]) => a.localeCompare(b)));
  return sha256Digest(new TextEncoder().encode(JSON.stringify(sorted)));
}

/** What {@linkcode VerdictCache.load} read. */
export interface LoadedVerdicts {
  entries: VerdictEntry[];
  /** Why the file could not be used (it will be replaced); absent when it was fine or missing. */
  problem?: string;
}

/**
 * The verdict file.
 *
 * @example
 * ```ts ignore
 * import { VerdictCache } from "./verdicts.ts";
 * const cache = new VerdictCache("/var/lib/volant/boot-verdicts.json");
 * const { entry } = await cache.lookup(inputs);
 * ```
 */
export class VerdictCache {
  /** The file's path. */
  readonly path: string;

  /** A cache kept in `path`. */
  constructor(path: string) {
    this.path = path;
  }

  /** Reads the file; a missing file is an empty cache, a bad one a `problem`. */
  async load(): Promise<LoadedVerdicts> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return { entries: [] };
      return { entries: [], problem: `cannot read ${this.path}: ${(err as Error).message}` };
    }
    let text: string;
    try {
      const size = (await file.stat()).size;
      if (size > MAX_FILE_BYTES) {
        return {
          entries: [],
          problem: `${this.path} is ${size} bytes, more than a verdict file can be ` +
            `(${MAX_FILE_BYTES})`,
        };
      }
      const buf = new Uint8Array(size);
      let at = 0;
      while (at < size) {
        const n = await file.read(buf.subarray(at));
        if (n === null) break;
        at += n;
      }
      text = new TextDecoder().decode(buf.subarray(0, at));
    } finally {
      file.close();
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      return { entries: [], problem: `${this.path} is not JSON: ${(err as Error).message}` };
    }
    const parsed = VerdictFile.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? issue.path.map(String).join(".") || "(top level)" : "(top level)";
      return {
        entries: [],
        problem: `${this.path} is not a verdict file (${where}: ${issue?.message ?? "invalid"})`,
      };
    }
    return { entries: parsed.data.verdicts };
  }

  /** The verdict for `inputs`, when one is cached. */
  async lookup(inputs: VerdictInputs): Promise<{ entry?: VerdictEntry; problem?: string }> {
    const loaded = await this.load();
    const key = verdictKey(inputs);
    const entry = loaded.entries.find((e) => e.key === key);
    return { ...(entry ? { entry } : {}), ...(loaded.problem ? { problem: loaded.problem } : {}) };
  }

  /** Records a verdict for `inputs` (replacing an older one for the same inputs). */
  async record(
    inputs: VerdictInputs,
    verdict: { ok: boolean; ms: number; reason?: string; checkedAt: Date },
  ): Promise<VerdictEntry> {
    const key = verdictKey(inputs);
    const entry: VerdictEntry = {
      key,
      inputs,
      ok: verdict.ok,
      ms: Math.max(0, Math.round(verdict.ms)),
      reason: verdict.reason ?? null,
      checked_at: verdict.checkedAt.toISOString(),
    };
    const kept = (await this.load()).entries.filter((e) => e.key !== key);
    const entries = [...kept, entry].slice(-MAX_ENTRIES);
    const dir = this.path.slice(0, Math.max(0, this.path.lastIndexOf("/"))) || ".";
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify({ v: 1, verdicts: entries }, null, 2) + "\n", {
        mode: 0o600,
      });
      await Deno.chmod(tmp, 0o600);
      await Deno.rename(tmp, this.path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
    return entry;
  }
}
