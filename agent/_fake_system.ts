/** A scripted {@linkcode System} for tests: in-memory files, recorded calls. @module */
import type { MountSpec } from "./mounts.ts";
import type { System } from "./system.ts";

/** A fake machine and the record of what was done to it. */
export interface FakeSystem extends System {
  /** Every side effect in order: `mount /dev/pts`, `sethostname web`, `powerOff`… */
  calls: string[];
  /** Human log lines (without the prefix). */
  logs: string[];
  /** Raw printed lines. */
  printed: string[];
  /** Files by path; mutate to change what reads see. */
  files: Map<string, string>;
  /** Paths that exist (besides files). */
  paths: Set<string>;
}

/** Options of {@linkcode fakeSystem}. */
export interface FakeSystemOptions {
  /** Initial files. */
  files?: Record<string, string>;
  /** Existing directories and nodes. */
  paths?: string[];
  /** Throws this from `mount` for the given target. */
  failMount?: { target: string; error: Error };
  /** Called after each mount, e.g. to update the fake mountinfo. */
  onMount?: (spec: MountSpec, fake: FakeSystem) => void;
}

/** Builds a fake system. `powerOff` only records (it returns, like a dry run). */
export function fakeSystem(options: FakeSystemOptions = {}): FakeSystem {
  const fake: FakeSystem = {
    dryRun: false,
    calls: [],
    logs: [],
    printed: [],
    files: new Map(Object.entries(options.files ?? {})),
    paths: new Set(options.paths ?? []),
    readText(path) {
      const text = fake.files.get(path);
      return text === undefined
        ? Promise.reject(new Deno.errors.NotFound(`fake: no ${path}`))
        : Promise.resolve(text);
    },
    exists: (path) => Promise.resolve(fake.paths.has(path) || fake.files.has(path)),
    mkdirp(path) {
      fake.calls.push(`mkdirp ${path}`);
      fake.paths.add(path);
      return Promise.resolve();
    },
    symlink(target, path) {
      fake.calls.push(`symlink ${path} -> ${target}`);
      fake.paths.add(path);
      return Promise.resolve();
    },
    remove(path) {
      fake.calls.push(`remove ${path}`);
      return fake.files.delete(path) || fake.paths.delete(path)
        ? Promise.resolve()
        : Promise.reject(new Deno.errors.NotFound(`fake: no ${path}`));
    },
    mount(spec) {
      if (options.failMount?.target === spec.target) throw options.failMount.error;
      fake.calls.push(`mount ${spec.fstype} ${spec.target}`);
      options.onMount?.(spec, fake);
    },
    sethostname: (name) => void fake.calls.push(`sethostname ${name}`),
    cadOff: () => void fake.calls.push("cadOff"),
    sync: () => void fake.calls.push("sync"),
    powerOff: () => void fake.calls.push("powerOff"),
    log: (message) => void fake.logs.push(message),
    print: (line) => void fake.printed.push(line),
  };
  return fake;
}

/** A mountinfo line for `target` of type `fstype`, with a given mount id. */
export function mountinfoLine(id: number, target: string, fstype: string): string {
  return `${id} 1 0:${id} / ${target} rw,nosuid shared:${id} - ${fstype} ${fstype} rw`;
}

/** Appends a mountinfo line for each mount, as the kernel would. */
export function trackMounts(spec: MountSpec, fake: FakeSystem): void {
  const info = fake.files.get("/proc/self/mountinfo") ?? "";
  const id = info.split("\n").filter((l) => l !== "").length + 100;
  fake.files.set("/proc/self/mountinfo", `${info}${mountinfoLine(id, spec.target, spec.fstype)}\n`);
  fake.paths.add(spec.target);
}
