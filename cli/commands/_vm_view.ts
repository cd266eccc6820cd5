/**
 * Human views of VMs: the list table, the `key: value` view of one VM, and the one-line
 * summary printed after create/start/restart/stop/delete. Internal to the CLI.
 *
 * @module
 */
import type { VmRecord, VmState } from "../../schema/mod.ts";
import { policyPairs } from "./_policy_flags.ts";
import {
  ageSince,
  formatBoot,
  formatKeyValues,
  formatPorts,
  formatSeconds,
  formatTable,
  paint,
  type Style,
} from "../format.ts";

/** Headers of `volar vms list`. */
export const LIST_HEADERS: readonly string[] = [
  "NAME",
  "STATE",
  "IP",
  "CPU",
  "MEM(MiB)",
  "HYPERVISOR",
  "KVM",
  "PID",
  "BOOT",
  "AGE",
];

const STATE_STYLE: Record<VmState, Style | null> = {
  pending: "yellow",
  starting: "yellow",
  running: "green",
  stopping: "yellow",
  stopped: "dim",
  crashed: "red",
};

/** A state word, coloured when `color`. */
export function paintState(state: VmState, color: boolean): string {
  const style = STATE_STYLE[state];
  return style ? paint(style, state, color) : state;
}

/** The `volar vms list` table. */
export function vmTable(vms: readonly VmRecord[], now: number, color: boolean): string {
  const rows = vms.map((vm) => [
    vm.name,
    paintState(vm.state, color),
    vm.ip ?? "-",
    String(vm.cpu_cores),
    String(vm.memory_mb),
    vm.hypervisor,
    vm.kvm ? "yes" : "no",
    vm.pid === null ? "-" : String(vm.pid),
    formatBoot(vm.boot_ms),
    ageSince(vm.created_at, now),
  ]);
  const headers = LIST_HEADERS.map((h) => paint("bold", h, color));
  return formatTable(headers, rows);
}

function timeWithAge(time: string | null, now: number): string {
  return time === null ? "-" : `${time} (${ageSince(time, now)} ago)`;
}

/** The VMM's confinement in force: uid, jail root, cgroup and its limits ("-" when none). */
function jailPairs(vm: VmRecord): [string, string][] {
  const jail = vm.jail;
  if (!jail) return [["jail", vm.pid === null ? "-" : "none (security.jail: off)"]];
  const cg = jail.cgroup;
  const [quota, period] = cg.cpu_max.split(" ").map(Number);
  const cpus = quota && period ? `${Math.round((quota / period) * 100) / 100} CPUs` : cg.cpu_max;
  return [
    ["jail", `uid ${jail.uid}, gid ${jail.gid}, root ${jail.root}`],
    ["cgroup", `${cg.paths.join(", ")} (${cg.version})`],
    [
      "limits",
      `memory ${Math.round(cg.memory_max_bytes / 1024 / 1024)} MiB, cpu ${cpus}, ` +
      `pids ${cg.pids_max}`,
    ],
  ];
}

/** The `volar vms get` view: one `key: value` line per field, `last error` only when set. */
export function vmDetails(vm: VmRecord, now: number, color: boolean): string {
  const pairs: [string, string][] = [
    ["name", vm.name],
    ["state", paintState(vm.state, color)],
    ["plugin", vm.plugin ?? "-"],
    ["image", vm.image === null ? "-" : `${vm.image} (${vm.image_digest?.slice(0, 19) ?? "?"})`],
    ["cpu", String(vm.cpu_cores)],
    ["memory", `${vm.memory_mb} MiB`],
    ["kernel", vm.kernel],
    ["kernel cmdline", vm.kernel_cmdline ?? "-"],
    ["hypervisor", vm.hypervisor],
    ["kvm", vm.kvm ? "yes" : "no (TCG emulation)"],
    ["pid", vm.pid === null ? "-" : String(vm.pid)],
    ["ip", vm.ip ?? "-"],
    ["mac", vm.mac ?? "-"],
    ["tap", vm.tap ?? "-"],
    ["ports", formatPorts(vm.ports)],
    ...policyPairs(vm.network_policy),
    ["created", timeWithAge(vm.created_at, now)],
    ["started", timeWithAge(vm.started_at, now)],
    ["ready", timeWithAge(vm.ready_at, now)],
    ["boot", formatBoot(vm.boot_ms)],
  ];
  pairs.push(...jailPairs(vm));
  if (vm.last_error !== null) pairs.push(["last error", paint("red", vm.last_error, color)]);
  return formatKeyValues(pairs);
}

/**
 * The line printed after a lifecycle command: `demo  running  ready in 3.41 s`, or
 * `demo  starting`, or `demo  deleted`.
 */
export function vmSummary(vm: VmRecord, color: boolean, word?: string): string {
  const state = word ?? paintState(vm.state, color);
  const ready = word === undefined && vm.state === "running" && vm.boot_ms !== null
    ? `  ready in ${formatSeconds(vm.boot_ms)}`
    : "";
  return `${vm.name}  ${state}${ready}\n`;
}

const PHASE_LABELS: Record<string, string> = {
  kernel_ms: "kernel (to stage 0)",
  stage0_ms: "stage 0 (drivers, runtime disk)",
  runtime_ms: "runtime started (Deno)",
  kestrel_ms: "kestrel running",
  mounts_ms: "mounts",
  network_ms: "network",
  workload_ms: "workload started",
  ready_ms: "kestrel ready",
};

/**
 * `volar vms get --timeline`: each phase of the last boot at its guest uptime and what it took.
 *
 * @example
 * ```ts ignore
 * console.log(timelineView(vm));
 * ```
 */
export function timelineView(vm: VmRecord): string {
  if (vm.timeline === null) {
    return `${vm.name}: no boot timeline yet (kestrel reports it when it is ready; VMs with ` +
      "init none or custom have none)\n";
  }
  const t = vm.timeline;
  // In time order: when stage 0 started the workload, network and workload come before Deno.
  const early = t.workload_ms !== undefined && t.runtime_ms !== undefined &&
    t.workload_ms < t.runtime_ms;
  const phases = Object.entries(PHASE_LABELS)
    .map(([phase, label], order) => ({
      at: t[phase as keyof typeof t],
      label: early && phase === "workload_ms" ? "workload started (by stage 0)" : label,
      order,
    }))
    .filter((p): p is { at: number; label: string; order: number } => p.at !== undefined)
    .sort((a, b) => a.at - b.at || a.order - b.order);
  let previous = 0;
  const rows: string[][] = [];
  for (const { at, label } of phases) {
    rows.push([label, formatSeconds(at), `+${formatSeconds(Math.max(0, at - previous))}`]);
    previous = at;
  }
  const running = vm.boot_ms === null
    ? ""
    : `\nhost: start request → running ${formatSeconds(vm.boot_ms)} (boot_ms)\n`;
  return formatTable(["PHASE", "GUEST UPTIME", "TOOK"], rows) + running;
}
