/**
 * `volar dashboard`: a live full-screen view of the host — the daemon, its hypervisor, every VM
 * (state, address, workload health, boot time) and the latest events — redrawn as events arrive
 * and every `--interval`. `q` or Ctrl-C leaves. Needs a terminal.
 *
 * @module
 */
import type { Command } from "commander";
import { type DeploymentRecord, Health, type VmRecord, VolantEvent } from "../../schema/mod.ts";
import { ListDeployments, ListVms } from "../../schema/operations/mod.ts";
import { UsageError } from "../errors.ts";
import { paint, stripAnsi } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { globalFlags, withClient } from "./_context.ts";
import { formatEvent } from "./events.ts";
import { followEvents } from "./_event_follow.ts";
import { vmTable } from "./_vm_view.ts";
import { parseTimeout } from "./vms.ts";

/** What one frame shows. */
export interface DashboardState {
  health: Health | null;
  vms: readonly VmRecord[];
  /** Deployments (absent from older daemons: none). */
  deployments?: readonly DeploymentRecord[];
  /** Latest events, newest last. */
  events: readonly VolantEvent[];
  /** Why the last refresh failed, if it did. */
  error: string | null;
  now: number;
}

/** Events kept for the bottom pane. */
export const EVENTS_KEPT = 50;

function workloadSummary(vms: readonly VmRecord[]): string {
  const withWorkload = vms.filter((v) => v.workload !== null);
  if (withWorkload.length === 0) return "no workloads";
  const healthy = withWorkload.filter((v) => v.workload!.healthy).length;
  return `${healthy}/${withWorkload.length} workloads healthy`;
}

/** The accelerator in the header: KVM, or TCG and why (no KVM, or KVM failed its probe). */
function accelLabel(h: Health): string {
  if (h.hypervisor.kvm) return "KVM";
  const probe = h.hypervisor.acceleration.probe;
  return probe && !probe.ok ? "TCG (KVM fails its probe boot)" : "TCG (no KVM)";
}

/**
 * One frame, cut to `width` × `height` (lines never wrap, so the screen never scrolls).
 *
 * @example
 * ```ts
 * import { renderDashboard } from "./dashboard.ts";
 * const frame = renderDashboard(
 *   { health: null, vms: [], events: [], error: null, now: Date.now() }, 80, 24, false);
 * console.assert(frame.split("\n").length <= 24);
 * ```
 */
export function renderDashboard(
  state: DashboardState,
  width: number,
  height: number,
  color: boolean,
): string {
  const h = state.health;
  const counts = new Map<string, number>();
  for (const vm of state.vms) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1);
  const byState = [...counts].map(([s, n]) => `${n} ${s}`).join(", ") || "no VMs";
  const head = [
    paint("bold", "volant dashboard", color) +
    (h
      ? `  volantd ${h.version}  ${h.hypervisor.name} ${h.hypervisor.version ?? ""} ` +
        accelLabel(h)
      : "  volantd: not answering"),
    `${state.vms.length} VMs: ${byState}; ${workloadSummary(state.vms)}` +
    (state.error ? `  ${paint("red", state.error, color)}` : ""),
    ...((state.deployments ?? []).length === 0 ? [] : [
      "deployments: " +
      state.deployments!.map((d) =>
        `${d.name} ${d.ready}/${d.replicas} ${
          paint(
            d.status === "ready" ? "green" : d.status === "progressing" ? "yellow" : "red",
            d.status,
            color,
          )
        }`
      ).join(", "),
    ]),
    "",
  ];
  const table = state.vms.length === 0
    ? ["(no VMs: volar vms create <name>)"]
    : vmTable(state.vms, state.now, color).split("\n");
  const eventRoom = Math.max(3, height - head.length - table.length - 3);
  const events = state.events.slice(-eventRoom).map((e) => formatEvent(e, color));
  const lines = [
    ...head,
    ...table,
    "",
    paint("bold", "events", color) + "  (q quits)",
    ...(events.length > 0 ? events : ["(none since the dashboard started)"]),
  ];
  return lines.slice(0, height).map((l) => cut(l, width)).join("\n");
}

/** Cuts a line to `width` visible columns, keeping its colours closed. */
function cut(line: string, width: number): string {
  if (stripAnsi(line).length <= width) return line;
  let out = "";
  let visible = 0;
  for (let i = 0; i < line.length && visible < width;) {
    // deno-lint-ignore no-control-regex
    const esc = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
    if (esc) {
      out += esc[0];
      i += esc[0].length;
      continue;
    }
    out += line[i++];
    visible++;
  }
  return `${out}\x1b[0m`;
}

/** Registers `volar dashboard`. */
export function registerDashboard(program: Command, io: Io): void {
  program.command("dashboard").alias("top").description(
    "live view of the VMs and their events (q quits; needs a terminal)",
  )
    .option("--interval <duration>", "how often to refresh the VM list", parseTimeout, 2000)
    .action(async (flags, cmd) => {
      const globals = globalFlags(cmd);
      if (!io.outIsTerminal || !Deno.stdin.isTerminal()) {
        throw new UsageError(
          "dashboard needs a terminal; for scripts use volar vms list --json and volar events --json",
        );
      }
      const color = colorEnabled(io);
      await withClient(globals, io, async (client) => {
        const state: DashboardState = {
          health: null,
          vms: [],
          events: [],
          error: null,
          now: Date.now(),
        };
        const draw = () => {
          const size = (() => {
            try {
              return Deno.consoleSize();
            } catch {
              return { columns: 0, rows: 0 };
            }
          })();
          // A pseudo-terminal may report 0 × 0: draw for the classic 80 × 24 then.
          const columns = size.columns || 80;
          const rows = size.rows || 24;
          state.now = Date.now();
          io.out(`\x1b[H\x1b[2J${renderDashboard(state, columns, rows, color)}`);
        };
        const refresh = async () => {
          try {
            state.health = await client.health();
            state.vms = (await client.call(ListVms, {})).vms;
            state.deployments = (await client.call(ListDeployments, {})).deployments;
            state.error = null;
          } catch (err) {
            state.error = (err as Error).message.split("\n")[0]!;
          }
          draw();
        };
        const stop = new AbortController();
        io.out("\x1b[?1049h\x1b[?25l");
        Deno.stdin.setRaw(true);
        try {
          await refresh();
          const timer = setInterval(refresh, flags.interval);
          // Reconnects (with Last-Event-ID) when volantd restarts; a burst redraws once.
          let pending: Promise<void> | null = null;
          const watching = followEvents(client, {
            since: null,
            signal: stop.signal,
            reconnectMs: 24 * 3600_000,
            onEvent: (data) => {
              const parsed = VolantEvent.safeParse(JSON.parse(data));
              if (!parsed.success) return;
              state.events = [...state.events, parsed.data].slice(-EVENTS_KEPT);
              pending ??= refresh().finally(() => pending = null);
            },
            onReconnect: (reason) => {
              state.error = `events: ${reason.split("\n")[0]} (reconnecting)`;
              draw();
            },
          }).catch(() => {
            // Stopped, or the daemon stayed away (the refreshes say so).
          });
          const keys = Deno.stdin.readable.getReader();
          try {
            for (;;) {
              const { value, done } = await keys.read();
              if (done || value.includes(0x71) || value.includes(0x03)) break;
            }
          } finally {
            keys.releaseLock();
            clearInterval(timer);
            stop.abort();
            await watching;
          }
        } finally {
          Deno.stdin.setRaw(false);
          io.out("\x1b[?25h\x1b[?1049l");
        }
      });
    });
}
