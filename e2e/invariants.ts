/**
 * What a volantd at rest must not leave behind, checked from the outside: given its state,
 * runtime and log dirs, its network namespace (and its VMM cgroup parent), list every orphan —
 * a resource no row owns — and every row that lies. Clean is an empty list. Used by the fault
 * suite (`e2e/faults_test.ts`) after each restart; any e2e test may call it once no operation
 * is in flight.
 *
 * What each resource needs to be owned:
 *
 * - a process naming the daemon's dirs, running as a VM's jail uid, or in one of its VMM
 *   cgroups: it is the recorded VMM of a VM that runs;
 * - a tap `vt-*`, a policy endpoint (`bridge volant_policy`), an address of the VM subnet in
 *   `ip volant_policy` (its maps, peers' `allow_from`): the tap or address of a VM that runs;
 * - a lease: its VM exists; a port forward (`ip volant`): its VM exists and holds that address
 *   and port;
 * - entries of a VM's runtime dir (sockets, pid files): the VM runs (else the dir is empty and
 *   root's); a jail dir or VMM cgroup: its VM runs; a per-VM runtime, log or disk dir: its VM
 *   exists;
 * - an image blob or root filesystem: an indexed image uses it; an artifact blob: an installed
 *   plugin uses it; temp files and unpack trees: never; a mount below the daemon's dirs: never.
 *
 * A row is `pending` or `stopping` only while a request runs (never at rest); a VM the store
 * says `starting` or `running` has its VMM alive (same pid and start time), its tap, its lease,
 * a VMM API that answers (QMP for QEMU) and, when `running` and `api` is given, kestrel
 * answering through the daemon; one that is `stopped` or `crashed` holds no VMM, tap or secret.
 *
 * @module
 */
import { openStore, type VmRow } from "../daemon/store/mod.ts";
import {
  cgroupParentDirs,
  CONTROLLERS,
  detectCgroupHost,
  listVmmCgroups,
} from "../hypervisor/jail/mod.ts";
import { isAlive } from "../hypervisor/process/mod.ts";
import { qmpExecute } from "../hypervisor/qemu/mod.ts";
import { ImageIndexFile, recordBlobs } from "../images/mod.ts";
import {
  listEndpointPolicies,
  listPortForwards,
  netmask,
  parseIpv4,
  POLICY_TABLE,
  TAP_PREFIX,
} from "../net/mod.ts";

/** The daemon to check. */
export interface DaemonUnderCheck {
  /** Its `state_dir`. */
  stateDir: string;
  /** Its `runtime_dir`. */
  runtimeDir: string;
  /** Its `log_dir`. */
  logDir: string;
  /** The network namespace it runs in (its bridge, taps and nft tables are there). */
  netns: string;
  /** Its `security.cgroup_parent`, when its VMMs are jailed. */
  cgroupParent?: string;
  /** Its pid while it runs: mounts are looked for in its mount namespace too. */
  daemonPid?: number;
  /** A request to its API; when given, every `running` VM's kestrel must answer through it. */
  api?: (path: string) => Promise<{ status: number; body: unknown }>;
}

/** A VM that runs: the store says so. Whether it really does is checked separately. */
function runs(row: VmRow | undefined): boolean {
  return row !== undefined && (row.state === "starting" || row.state === "running") &&
    row.handle !== null;
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

async function command(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Every orphan and lying row of the daemon `d`, one line each (empty when clean).
 *
 * @example
 * ```ts ignore
 * import { findOrphans } from "./invariants.ts";
 * const found = await findOrphans({
 *   stateDir: `${dir}/state`, runtimeDir: `${dir}/run`, logDir: `${dir}/log`, netns: ns,
 * });
 * if (found.length > 0) throw new Error(found.join("\n"));
 * ```
 */
export async function findOrphans(d: DaemonUnderCheck): Promise<string[]> {
  const store = openStore(`${d.stateDir}/volant.db`);
  let rows: VmRow[];
  let out: string[];
  try {
    rows = store.vms.list();
    out = [];
    const leases = store.leases.list();
    if (store.leases.taken().size !== leases.length) {
      out.push(`${store.leases.taken().size - leases.length} lease(s) without a VM`);
    }
    const used = store.plugins.checksums();
    out.push(...await artifactOrphans(d.stateDir, used));
  } finally {
    store.close();
  }
  const byName = new Map(rows.map((r) => [r.name, r]));
  out.push(...await rowProblems(d, rows));
  out.push(...await processOrphans(d, rows));
  out.push(...await networkOrphans(d, byName));
  out.push(...await vmDirOrphans(d, byName));
  out.push(...await imageOrphans(d.stateDir));
  out.push(...await mountOrphans(d));
  return out;
}

/** Rows in states no request is making, and VMs said to run that do not. */
async function rowProblems(d: DaemonUnderCheck, rows: readonly VmRow[]): Promise<string[]> {
  const out: string[] = [];
  for (const row of rows) {
    const vm = `VM ${row.name} (${row.state})`;
    if (row.state === "pending" || row.state === "stopping") {
      out.push(`${vm}: a transient state at rest`);
      continue;
    }
    if (row.state === "stopped" || row.state === "crashed") {
      if (row.handle !== null) out.push(`${vm}: still records VMM pid ${row.handle.pid}`);
      if (row.tap !== null) out.push(`${vm}: still records tap ${row.tap}`);
      if (row.agent_secret !== null) out.push(`${vm}: still holds its kestrel secret`);
      continue;
    }
    // starting or running: it must run.
    if (row.handle === null) {
      out.push(`${vm}: no VMM recorded`);
      continue;
    }
    if (!(await isAlive(row.handle.pid, row.handle.startTime))) {
      out.push(`${vm}: its VMM (pid ${row.handle.pid}) is gone`);
      continue;
    }
    if (row.tap === null) out.push(`${vm}: no tap recorded`);
    if (row.ip === null) out.push(`${vm}: no lease`);
    if (row.handle.driver === "qemu") {
      try {
        await qmpExecute(row.handle.apiSocket, "query-status", undefined, { timeoutMs: 5_000 });
      } catch (err) {
        out.push(`${vm}: its VMM's API does not answer: ${(err as Error).message}`);
      }
    }
    if (row.state === "running" && d.api) {
      const health = await d.api(`/api/v1/vms/${row.name}/agent/healthz`).catch((err) => ({
        status: 0,
        body: (err as Error).message,
      }));
      if (health.status !== 200) {
        out.push(
          `${vm}: kestrel does not answer (${health.status}: ${JSON.stringify(health.body)})`,
        );
      }
    }
  }
  return out;
}

/** The VMM pids that are owned: those of VMs the store says run. */
function ownedPids(rows: readonly VmRow[]): Set<number> {
  return new Set(rows.filter(runs).map((r) => r.handle!.pid));
}

/** Processes naming the daemon's dirs, and processes in its VMM cgroups, that no VM owns. */
async function processOrphans(d: DaemonUnderCheck, rows: readonly VmRow[]): Promise<string[]> {
  const owned = ownedPids(rows);
  const needles = [`${d.runtimeDir}/`, `${d.logDir}/`, `${d.stateDir}/`];
  const jailUids = new Map(
    rows.filter((r) => r.jail_uid !== null).map((r) => [r.jail_uid!, r.name]),
  );
  const out: string[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid || owned.has(pid)) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const uid = Number(
        /^Uid:\s+(\d+)/m.exec(await Deno.readTextFile(`/proc/${pid}/status`))?.[1],
      );
      const what = `process ${pid} (${cmdline.split("\0").slice(0, 3).join(" ")})`;
      if (jailUids.has(uid)) out.push(`${what} runs as VM ${jailUids.get(uid)}'s jail uid ${uid}`);
      else if (needles.some((n) => cmdline.includes(n))) out.push(`${what} is no VM's VMM`);
    } catch {
      // Gone meanwhile.
    }
  }
  if (d.cgroupParent === undefined) return out;
  const host = await detectCgroupHost("auto").catch(() => null);
  if (host === null) return out;
  const parent = cgroupParentDirs(host, d.cgroupParent);
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const vm of await listVmmCgroups(parent)) {
    const row = byName.get(vm);
    if (!runs(row)) {
      out.push(`cgroup ${vm}: VM ${vm} ${row ? `is ${row.state}` : "does not exist"}`);
      continue;
    }
    for (const c of CONTROLLERS) {
      const procs = await Deno.readTextFile(`${parent[c]}/${vm}/cgroup.procs`).catch(() => "");
      for (const pid of procs.split("\n").filter((p) => p !== "").map(Number)) {
        if (pid !== row!.handle!.pid) {
          out.push(`cgroup ${vm} (${c}): process ${pid} is not its VMM`);
        }
      }
    }
  }
  return out;
}

/**
 * The addresses of the daemon's own subnets (those of its namespace's interfaces, loopback
 * aside) that table `ip volant_policy` names (in its maps, and in peers' `allow_from` sets),
 * the interfaces' own addresses (the gateway) left out.
 */
async function policyAddresses(netns: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await command("ip", [
      "netns",
      "exec",
      netns,
      "nft",
      "list",
      "table",
      "ip",
      POLICY_TABLE,
    ]);
  } catch (err) {
    if (/No such file or directory/.test((err as Error).message)) return new Set();
    throw err;
  }
  const ifaces = JSON.parse(await command("ip", ["-n", netns, "-j", "-4", "addr", "show"])) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  const own = new Set<string>();
  const subnets: { network: number; mask: number }[] = [];
  for (const iface of ifaces) {
    if (iface.ifname === "lo") continue;
    for (const a of iface.addr_info ?? []) {
      own.add(a.local);
      const mask = netmask(a.prefixlen);
      subnets.push({ network: (parseIpv4(a.local) & mask) >>> 0, mask });
    }
  }
  const found = new Set<string>();
  for (const m of text.matchAll(/(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d./])/g)) {
    const address = m[1]!;
    const n = parseIpv4(address);
    if (own.has(address) || !subnets.some((s) => ((n & s.mask) >>> 0) === s.network)) continue;
    found.add(address);
  }
  return found;
}

/** Taps, port forwards and policy rules no VM owns. */
async function networkOrphans(
  d: DaemonUnderCheck,
  byName: ReadonlyMap<string, VmRow>,
): Promise<string[]> {
  const out: string[] = [];
  const links = JSON.parse(await command("ip", ["-n", d.netns, "-j", "link", "show"])) as {
    ifname: string;
  }[];
  const taps = new Set(links.map((l) => l.ifname).filter((n) => n.startsWith(TAP_PREFIX)));
  const running = [...byName.values()].filter(runs);
  for (const tap of taps) {
    if (!running.some((r) => r.tap === tap)) out.push(`tap ${tap}: no VM that runs owns it`);
  }
  for (const row of running) {
    if (row.tap !== null && !taps.has(row.tap)) {
      out.push(`VM ${row.name}: its tap ${row.tap} is gone`);
    }
  }
  for (const f of await listPortForwards({ netns: d.netns })) {
    const row = byName.get(f.owner);
    const rule =
      `port forward ${f.hostPort}/${f.protocol} → ${f.guestIp}:${f.guestPort} (${f.owner})`;
    if (!row) out.push(`${rule}: VM ${f.owner} does not exist`);
    else if (row.ip !== f.guestIp) out.push(`${rule}: VM ${f.owner} holds ${row.ip ?? "no lease"}`);
    else if (!row.ports.some((p) => p.host_port === f.hostPort && p.protocol === f.protocol)) {
      out.push(`${rule}: VM ${f.owner} does not publish it`);
    }
  }
  for (const e of (await listEndpointPolicies({ netns: d.netns })) ?? []) {
    const row = byName.get(e.owner);
    if (!runs(row) || row!.tap !== e.link) {
      out.push(
        `policy endpoint ${e.link} (${e.owner}, bridge ${POLICY_TABLE}): no VM that runs owns it`,
      );
    }
  }
  const addresses = new Set(running.map((r) => r.ip));
  for (const address of await policyAddresses(d.netns)) {
    if (!addresses.has(address)) {
      out.push(`policy rules name ${address} (ip ${POLICY_TABLE}): no VM that runs holds it`);
    }
  }
  return out;
}

/** Per-VM dirs of VMs that do not exist; sockets, pid files and jails of VMs that do not run. */
async function vmDirOrphans(
  d: DaemonUnderCheck,
  byName: ReadonlyMap<string, VmRow>,
): Promise<string[]> {
  const out: string[] = [];
  const perVm = [`${d.runtimeDir}/vms`, `${d.logDir}/vms`, `${d.stateDir}/vms`];
  for (const dir of perVm) {
    for (const name of await names(dir)) {
      if (!byName.has(name)) out.push(`${dir}/${name}: VM ${name} does not exist`);
    }
  }
  for (const [name, row] of byName) {
    if (runs(row)) continue;
    const dir = `${d.runtimeDir}/vms/${name}`;
    for (const entry of await names(dir)) out.push(`${dir}/${entry}: VM ${name} is ${row.state}`);
    const info = await Deno.stat(dir).catch(() => null);
    if (info !== null && info.uid !== 0) {
      out.push(`${dir}: owned by uid ${info.uid} while VM ${name} is ${row.state}`);
    }
  }
  for (const name of await names(`${d.runtimeDir}/jails`)) {
    const row = byName.get(name);
    if (!runs(row)) {
      out.push(
        `jail ${d.runtimeDir}/jails/${name}: VM ${name} ${
          row ? `is ${row.state}` : "does not exist"
        }`,
      );
    }
  }
  return out;
}

/** Image blobs and root filesystems no indexed image uses, and temp files. */
async function imageOrphans(stateDir: string): Promise<string[]> {
  const root = `${stateDir}/images`;
  const records = await new ImageIndexFile(`${root}/images.json`).read();
  const blobs = new Set(records.flatMap(recordBlobs).map((b) => b.slice("sha256:".length)));
  const rootfs = new Set(records.map((r) => r.rootfs.path));
  const out: string[] = [];
  for (const name of await names(`${root}/tmp`)) out.push(`${root}/tmp/${name}: a temp tree`);
  for (const name of await names(`${root}/blobs/sha256`)) {
    if (!blobs.has(name)) out.push(`${root}/blobs/sha256/${name}: no image uses it`);
  }
  for (const name of await names(`${root}/rootfs`)) {
    if (!rootfs.has(`${root}/rootfs/${name}`)) out.push(`${root}/rootfs/${name}: no image uses it`);
  }
  for (const name of await names(root)) {
    if (!["tmp", "blobs", "rootfs", "images.json"].includes(name)) {
      out.push(`${root}/${name}: not part of the image store`);
    }
  }
  return out;
}

/** Artifact blobs no installed plugin uses, fingerprints without a blob, and temp files. */
async function artifactOrphans(stateDir: string, used: ReadonlySet<string>): Promise<string[]> {
  const root = `${stateDir}/artifacts`;
  const hexes = new Set([...used].map((c) => c.replace(/^sha256:/, "")));
  const out: string[] = [];
  for (const name of await names(`${root}/tmp`)) out.push(`${root}/tmp/${name}: a temp file`);
  for (const name of await names(`${root}/sha256`)) {
    const hex = name.replace(/\.fp$/, "");
    if (!hexes.has(hex)) out.push(`${root}/sha256/${name}: no plugin uses it`);
  }
  return out;
}

/** Mounts below the daemon's dirs (an unpack's inert mount left by a kill). */
async function mountOrphans(d: DaemonUnderCheck): Promise<string[]> {
  const out = new Set<string>();
  const sources = ["/proc/self/mountinfo"];
  if (d.daemonPid !== undefined) sources.push(`/proc/${d.daemonPid}/mountinfo`);
  for (const source of sources) {
    const text = await Deno.readTextFile(source).catch(() => "");
    for (const line of text.split("\n")) {
      const point = line.split(" ")[4];
      if (point === undefined) continue;
      for (const dir of [d.stateDir, d.runtimeDir, d.logDir]) {
        if (point.startsWith(`${dir}/`)) out.add(`mount ${point}: left at rest`);
      }
    }
  }
  return [...out];
}
