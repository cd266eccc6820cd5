import { deepEqual, match } from "node:assert/strict";
import { VmRecord } from "../../schema/mod.ts";
import { timelineView, vmDetails, vmTable } from "./_vm_view.ts";

const now = Date.parse("2026-01-01T00:01:00Z");
const base = VmRecord.parse({
  name: "web",
  state: "running",
  plugin: null,
  image: null,
  image_digest: null,
  cpu_cores: 1,
  memory_mb: 256,
  kernel: "vmlinux-generic",
  kernel_cmdline: null,
  hypervisor: "cloud-hypervisor",
  kvm: true,
  pid: 4242,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  started_at: "2026-01-01T00:00:00Z",
  ready_at: "2026-01-01T00:00:01Z",
  boot_ms: 812,
  last_error: null,
  ip: "192.168.127.2",
  mac: "02:00:00:00:00:01",
  tap: "vt-web",
  ports: [],
  workload: null,
});

Deno.test("vmDetails() shows the VM's hypervisor and whether it runs on KVM", () => {
  const kvm = vmDetails(base, now, false);
  match(kvm, /^hypervisor: +cloud-hypervisor$/m);
  match(kvm, /^kvm: +yes$/m);
  const tcg = vmDetails({ ...base, hypervisor: "qemu", kvm: false }, now, false);
  match(tcg, /^hypervisor: +qemu$/m);
  match(tcg, /^kvm: +no \(TCG emulation\)$/m);
});

Deno.test("vmTable() has HYPERVISOR and KVM columns", () => {
  const table = vmTable(
    [base, { ...base, name: "api", hypervisor: "firecracker", kvm: false }],
    now,
    false,
  );
  match(table, /^NAME +STATE +IP +CPU +MEM\(MiB\) +HYPERVISOR +KVM +PID/);
  match(table, /^web +running +192\.168\.127\.2 +1 +256 +cloud-hypervisor +yes +4242/m);
  match(table, /^api +running +192\.168\.127\.2 +1 +256 +firecracker +no +4242/m);
});

Deno.test("vmDetails() shows the image a VM runs with its digest, or a dash", () => {
  match(vmDetails(base, now, false), /^image: +-$/m);
  const vm = {
    ...base,
    image: "127.0.0.1:5000/demo/web:1.0",
    image_digest: `sha256:${"ab".repeat(32)}`,
  };
  match(
    vmDetails(vm, now, false),
    /^image: +127\.0\.0\.1:5000\/demo\/web:1\.0 \(sha256:abababababab\)$/m,
  );
});

Deno.test("vmDetails() shows the VMM's jail: uid, cgroup and the limits in force", () => {
  const jailed = VmRecord.parse({
    ...base,
    jail: {
      uid: 900001,
      gid: 900001,
      root: "/run/volant/jails/web",
      cgroup: {
        version: "v2",
        paths: ["/sys/fs/cgroup/volant/web"],
        memory_max_bytes: 448 * 1024 * 1024,
        cpu_max: "125000 100000",
        pids_max: 256,
      },
      devices: ["tun"],
    },
  });
  const text = vmDetails(jailed, now, false);
  match(text, /^jail: +uid 900001, gid 900001, root \/run\/volant\/jails\/web$/m);
  match(text, /^cgroup: +\/sys\/fs\/cgroup\/volant\/web \(v2\)$/m);
  match(text, /^limits: +memory 448 MiB, cpu 1\.25 CPUs, pids 256$/m);
  match(vmDetails(base, now, false), /^jail: +none \(security\.jail: off\)$/m);
});

Deno.test("timelineView: each phase at its guest uptime and what it took; none yet says why", () => {
  const vm = {
    ...base,
    boot_ms: 3100,
    timeline: {
      kernel_ms: 700,
      stage0_ms: 1200,
      runtime_ms: 1300,
      kestrel_ms: 2100,
      ready_ms: 2400,
    },
  };
  const text = timelineView(vm);
  match(text, /^PHASE\s+GUEST UPTIME\s+TOOK/);
  match(text, /kernel \(to stage 0\)\s+0\.70 s\s+\+0\.70 s/);
  match(text, /kestrel running\s+2\.10 s\s+\+0\.80 s/);
  match(text, /kestrel ready\s+2\.40 s\s+\+0\.30 s/);
  match(text, /host: start request → running 3\.10 s/);
  match(timelineView({ ...base, timeline: null }), /no boot timeline yet/);
});

Deno.test("timelineView: a workload stage 0 started is listed in time order, before Deno", () => {
  const vm = {
    ...base,
    boot_ms: 3100,
    timeline: {
      kernel_ms: 500,
      network_ms: 600,
      workload_ms: 620,
      stage0_ms: 650,
      runtime_ms: 1300,
      kestrel_ms: 2100,
      mounts_ms: 2200,
      ready_ms: 2400,
    },
  };
  const labels = timelineView(vm).split("\n").slice(1, 9).map((l) => l.split(/\s{2,}/)[0]);
  deepEqual(labels, [
    "kernel (to stage 0)",
    "network",
    "workload started (by stage 0)",
    "stage 0 (drivers, runtime disk)",
    "runtime started (Deno)",
    "kestrel running",
    "mounts",
    "kestrel ready",
  ]);
  match(timelineView(vm), /workload started \(by stage 0\)\s+0\.62 s\s+\+0\.02 s/);
});
