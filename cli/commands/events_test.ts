import { deepEqual, equal, match, ok } from "node:assert/strict";
import { ImageRecord, PluginRecord, VmRecord, VolantEvent } from "../../schema/mod.ts";
import { VolantClient } from "../client.ts";
import { startDaemon, volar } from "../testing.ts";
import { followEvents } from "./_event_follow.ts";
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

Deno.test("formatEvent() names plugin and image changes", () => {
  const at = "2026-11-24T15:04:05.123Z";
  const plugin = PluginRecord.parse({
    name: "hello",
    version: "1.2.0",
    runtime: "hello",
    description: null,
    enabled: false,
    init: "kestrel",
    signature: { status: "unsigned", key_id: null },
    source: null,
    installed_at: at,
    updated_at: at,
    artifacts: [],
    actions: [],
    used_by: [],
  });
  equal(
    formatEvent({ type: "plugin.disabled", name: "hello", at, plugin }, false),
    "15:04:05  plugin hello  disabled (version 1.2.0)",
  );
  const image = ImageRecord.parse({
    ref: "docker.io/library/nginx:1",
    digest: "sha256:abc",
    config_digest: "sha256:def",
    platform: "linux/amd64",
    source: "registry",
    config: {
      entrypoint: [],
      cmd: [],
      env: [],
      workdir: null,
      user: null,
      exposed_ports: [],
    },
    rootfs: { path: "/x", size_bytes: 1 },
    layers: [],
    warnings: [],
    created_at: at,
    used_by: [],
  });
  equal(
    formatEvent({ type: "image.pulled", name: image.ref, at, image }, false),
    "15:04:05  image docker.io/library/nginx:1  pulled (sha256:abc)",
  );
});

Deno.test("volar events --since: a bad id is a usage error; an unknown one ends with the daemon's error", async () => {
  const bad = await volar(["events", "--since", "1e3"]);
  equal(bad.code, 2);
  match(bad.stderr, /--since.*expected an event id/);
  const daemon = await startDaemon();
  try {
    const env = { VOLANT_SOCKET: daemon.socket };
    const unknown = await volar(["events", "--since", "999", "--json"], { env });
    equal(unknown.code, 1);
    equal(JSON.parse(unknown.stdout).code, "events_unknown", "--json prints the stream.error");
    match(unknown.stderr, /event 999 is newer than any this volantd recorded/);
  } finally {
    await daemon.stop();
  }
});

Deno.test("the follower resumes across a daemon restart with the last id it saw: every event once", async () => {
  const daemon = await startDaemon();
  const client = new VolantClient({ kind: "unix", socket: daemon.socket });
  const env = { VOLANT_SOCKET: daemon.socket };
  const stop = new AbortController();
  const seen: VolantEvent[] = [];
  const reconnects: Array<number | null> = [];
  const waiters: Array<{ until: (e: VolantEvent) => boolean; resolve: () => void }> = [];
  const say = (e: VolantEvent) =>
    e.type === "vm.state" ? `${e.name} ${e.from}→${e.to}` : `${e.name} ${e.type}`;
  const until = (text: string) =>
    new Promise<void>((resolve) => {
      if (seen.some((e) => say(e) === text)) return resolve();
      waiters.push({ until: (e) => say(e) === text, resolve });
    });
  const following = followEvents(client, {
    // From the first event, however late it connects.
    since: 0,
    signal: stop.signal,
    onEvent(data) {
      const event = VolantEvent.parse(JSON.parse(data));
      seen.push(event);
      for (const w of waiters) if (w.until(event)) w.resolve();
    },
    onReconnect: (_why, last) => void reconnects.push(last),
  });
  try {
    equal((await volar(["vms", "create", "web"], { env })).code, 0);
    await until("web starting→running");
    const before = seen.at(-1)!.id;
    await daemon.restart();
    equal((await volar(["vms", "stop", "web"], { env })).code, 0);
    equal((await volar(["vms", "create", "db"], { env })).code, 0);
    await until("db starting→running");
    ok(reconnects.length >= 1, "it reconnected");
    equal(reconnects[0], before, "with the last id it saw");
    deepEqual(seen.map(say), [
      "web null→pending",
      "web pending→starting",
      "web starting→running",
      "web running→stopping",
      "web stopping→stopped",
      "db null→pending",
      "db pending→starting",
      "db starting→running",
    ]);
    const first = seen[0]!.id;
    deepEqual(seen.map((e) => e.id), seen.map((_, i) => first + i), "no gap, no repeat");
  } finally {
    stop.abort();
    await following.catch(() => {});
    client.close();
    await daemon.stop();
  }
});
