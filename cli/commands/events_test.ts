import { deepEqual, equal } from "node:assert/strict";
import { VmRecord } from "../../schema/mod.ts";
import { formatEvent, sseData } from "./events.ts";

const vm = VmRecord.parse({
  name: "web",
  state: "crashed",
  plugin: null,
  image: null,
  image_digest: null,
  cpu_cores: 1,
  memory_mb: 256,
  kernel: "bzImage-volant",
  kernel_cmdline: null,
  hypervisor: "qemu",
  kvm: false,
  pid: null,
  created_at: "2026-11-24T15:00:00.000Z",
  updated_at: "2026-11-24T15:00:05.000Z",
  started_at: null,
  ready_at: null,
  boot_ms: null,
  last_error: "VMM exited (status 1)\nlast serial output: …",
  ip: null,
  mac: null,
  tap: null,
  ports: [],
  workload: null,
});

Deno.test("formatEvent() writes one line per event, the crash reason's first line included", () => {
  const at = "2026-11-24T15:04:05.123Z";
  equal(
    formatEvent({ type: "vm.state", name: "web", from: null, to: "pending", at, vm }, false),
    "15:04:05  web  new → pending",
  );
  equal(
    formatEvent({ type: "vm.state", name: "web", from: "running", to: "crashed", at, vm }, false),
    "15:04:05  web  running → crashed  VMM exited (status 1)",
  );
  equal(formatEvent({ type: "vm.deleted", name: "web", at, vm }, false), "15:04:05  web  deleted");
  equal(
    formatEvent({
      type: "vm.workload",
      name: "web",
      change: "restarted",
      at,
      workload: { state: "running", healthy: true, restarts: 2, checked_at: at, error: null },
    }, false),
    "15:04:05  web  workload restarted (running, restarts 2)",
  );
});

Deno.test("sseData() yields each event's data across chunk boundaries and skips comments", async () => {
  const chunks = [": hi\n\nevent: a\nid: 1\nda", 'ta: {"n":1}\n\nevent: b\ndata: {"n":2}\n\n'];
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk));
      c.close();
    },
  });
  const seen: string[] = [];
  for await (const data of sseData(new Response(body))) seen.push(data);
  deepEqual(seen, ['{"n":1}', '{"n":2}']);
});
