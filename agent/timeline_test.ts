import { deepEqual, equal } from "node:assert/strict";
import { TIMELINE_CHAINS, TIMELINE_PHASES } from "../schema/boot_config.ts";
import { Timeline, uptimeMs } from "./timeline.ts";

Deno.test("timeline: stage 0's marks, the runtime's start and kestrel's phases, in order", () => {
  let uptime = 2.0;
  const t = new Timeline(
    () => `${uptime.toFixed(2)} 1.00`,
    { VOLANT_T_KERNEL: "0.75", VOLANT_T_STAGE0: "1.40" },
    300,
  );
  for (const phase of ["mounts_ms", "network_ms", "workload_ms", "ready_ms"] as const) {
    uptime += 0.25;
    t.mark(phase);
  }
  uptime += 1;
  t.mark("ready_ms"); // the first mark stays
  deepEqual(t.value(), {
    kernel_ms: 750,
    stage0_ms: 1400,
    runtime_ms: 1700,
    kestrel_ms: 2000,
    mounts_ms: 2250,
    network_ms: 2500,
    workload_ms: 2750,
    ready_ms: 3000,
  });
  const values = TIMELINE_PHASES.map((p) => t.value()[p]!);
  deepEqual(values, [...values].sort((a, b) => a - b), "phases are in boot order");
});

Deno.test("timeline: unreadable uptime or marks that are not uptimes are left out", () => {
  const t = new Timeline(() => undefined, { VOLANT_T_KERNEL: "soon", VOLANT_T_STAGE0: "" }, 10);
  t.mark("mounts_ms");
  deepEqual(t.value(), {});
  equal(uptimeMs("-1"), undefined);
  equal(uptimeMs("12.345 3"), 12345);
});

Deno.test("timeline: a workload stage 0 started keeps stage 0's network and workload marks", () => {
  let uptime = 2.0;
  const t = new Timeline(() => `${uptime.toFixed(2)} 1.00`, {
    VOLANT_T_KERNEL: "0.50",
    VOLANT_T_NETWORK: "0.60",
    VOLANT_T_WORKLOAD: "0.62",
    VOLANT_T_STAGE0: "0.65",
  }, 300);
  for (const phase of ["mounts_ms", "network_ms", "workload_ms", "ready_ms"] as const) {
    uptime += 0.25;
    t.mark(phase);
  }
  const v = t.value();
  equal(v.network_ms, 600, "kestrel's later network mark does not replace stage 0's");
  equal(v.workload_ms, 620);
  for (const chain of TIMELINE_CHAINS) {
    const values = chain.map((p) => v[p]!);
    deepEqual(values, [...values].sort((a, b) => a - b), chain.join(" → "));
  }
});
