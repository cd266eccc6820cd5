import { equal, match, ok } from "node:assert/strict";
import { DeploymentRecord, Health, VmRecord } from "../../schema/mod.ts";
import { stripAnsi } from "../format.ts";
import { volar } from "../testing.ts";
import { renderDashboard } from "./dashboard.ts";

const now = Date.parse("2026-11-24T16:00:00Z");
const vm = (name: string, state: string, healthy: boolean | null) =>
  VmRecord.parse({
    name,
    state,
    plugin: healthy === null ? null : "web",
    image: null,
    image_digest: null,
    cpu_cores: 1,
    memory_mb: 256,
    kernel: "bzImage-volant",
    kernel_cmdline: null,
    hypervisor: "qemu",
    kvm: false,
    pid: state === "running" ? 4242 : null,
    created_at: "2026-11-24T15:59:00Z",
    updated_at: "2026-11-24T15:59:30Z",
    started_at: null,
    ready_at: null,
    boot_ms: state === "running" ? 2570 : null,
    last_error: null,
    ip: "192.168.127.2",
    mac: null,
    tap: null,
    ports: [],
    workload: healthy === null ? null : {
      state: "running",
      healthy,
      restarts: 0,
      checked_at: "2026-11-24T15:59:59Z",
      error: null,
    },
  });
const health = Health.parse({
  status: "ok",
  version: "0.1.0",
  hypervisor: {
    name: "qemu",
    version: "7.2.22",
    kvm: false,
    acceleration: {
      accel: "tcg",
      reason: "/dev/kvm is present but the guest kernel does not boot under it: using TCG",
      probe: { ok: false, ms: 15_000, cached: true, checked_at: null, reason: "hung" },
    },
  },
  vms: 2,
});

Deno.test("renderDashboard() shows the daemon, VM counts, workload health, the table and events", () => {
  const frame = renderDashboard(
    {
      health,
      vms: [vm("api", "crashed", null), vm("web", "running", true)],
      events: [{
        id: 1,
        type: "vm.state",
        name: "web",
        from: "starting",
        to: "running",
        at: "2026-11-24T15:59:30.000Z",
        vm: vm("web", "running", true),
      }],
      error: null,
      now,
    },
    120,
    30,
    false,
  );
  match(frame, /volantd 0\.1\.0 {2}qemu 7\.2\.22 TCG \(KVM fails its probe boot\)/);
  match(frame, /2 VMs: 1 crashed, 1 running; 1\/1 workloads healthy/);
  match(frame, /^web +running +192\.168\.127\.2/m);
  match(frame, /^15:59:30 {2}web {2}starting → running$/m);
});

Deno.test("renderDashboard() never wraps or scrolls: lines are cut to the width, the frame to the height", () => {
  const many = Array.from({ length: 40 }, (_, i) => vm(`vm-${i}`, "running", true));
  const frame = renderDashboard(
    { health: null, vms: many, events: [], error: "daemon went away", now },
    40,
    12,
    true,
  );
  const lines = frame.split("\n");
  equal(lines.length, 12);
  ok(lines.every((l) => stripAnsi(l).length <= 40), lines.map((l) => stripAnsi(l).length).join());
  match(stripAnsi(frame), /volantd: not answering/);
});

Deno.test("volar dashboard refuses to run without a terminal and says what to use", async () => {
  const r = await volar(["dashboard"]);
  equal(r.code, 2);
  match(r.stderr, /needs a terminal.*volar vms list --json.*volar events --json/);
});

Deno.test("dashboard: deployments get a line with ready/desired and status", () => {
  const deployment = DeploymentRecord.parse({
    name: "web",
    status: "progressing",
    replicas: 3,
    ready: 2,
    updated: 3,
    generation: 1,
    max_unavailable: 1,
    template: { plugin: "web" },
    members: [],
    failures: [],
    created_at: "2026-11-24T15:59:00Z",
    updated_at: "2026-11-24T15:59:00Z",
  });
  const frame = renderDashboard(
    { health: null, vms: [], deployments: [deployment], events: [], error: null, now },
    100,
    24,
    false,
  );
  match(frame, /^deployments: web 2\/3 progressing$/m);
  ok(
    !/deployments:/.test(
      renderDashboard({ health: null, vms: [], events: [], error: null, now }, 100, 24, false),
    ),
  );
});
