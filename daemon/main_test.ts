import { deepEqual, equal, match, ok } from "node:assert/strict";
import { Health, VmRecord, VolantEvent } from "../schema/mod.ts";
import { FakeDriver, FakeRegistry } from "../hypervisor/fake/mod.ts";
import { exists, unixFetch } from "./testing.ts";
import { createLogger } from "./log.ts";
import { main, type MainOptions } from "./main.ts";
import { fakeGuestAgent, FakeHostNetwork } from "./network/mod.ts";

interface Running {
  socket: Promise<string>;
  abort: AbortController;
  code: Promise<number>;
}

function start(args: string[], registry: FakeRegistry, logs: string[]): Running {
  const abort = new AbortController();
  let listening!: (socket: string) => void;
  const socket = new Promise<string>((resolve) => (listening = resolve));
  const options: MainOptions = {
    driverFactory: () => Promise.resolve(new FakeDriver({ registry })),
    // Never the real host network: this test runs in the machine's own namespace.
    networkFactory: () => new FakeHostNetwork({ agent: fakeGuestAgent(registry) }),
    env: () => undefined,
    signal: abort.signal,
    logger: createLogger({ sink: (l) => logs.push(l) }),
    onListening: (info) => listening(info.socket),
  };
  return { socket, abort, code: main(args, options) };
}

async function setup(): Promise<{ dir: string; config: string }> {
  const dir = await Deno.makeTempDir({ prefix: "volantd-main-" });
  await Deno.mkdir(`${dir}/guest`);
  for (const f of ["bzImage-volant", "initramfs.cpio", "runtime.erofs"]) {
    await Deno.writeTextFile(`${dir}/guest/${f}`, "dummy");
  }
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    [
      `state_dir: ${dir}/state`,
      `runtime_dir: ${dir}/run`,
      `log_dir: ${dir}/log`,
      `guest:`,
      `  dir: ${dir}/guest`,
      `api:`,
      `  socket_mode: 0o600`,
      `timeouts:`,
      `  stop_graceful_ms: 200`,
      `  stop_term_ms: 100`,
    ].join("\n"),
  );
  return { dir, config };
}

Deno.test("volantd serves, leaves VMs running on shutdown, re-adopts them, refuses a twin", async () => {
  const { dir, config } = await setup();
  const registry = new FakeRegistry();
  const logs: string[] = [];
  try {
    const first = start(["--config", config], registry, logs);
    const socket = await first.socket;
    equal(socket, `${dir}/run/volantd.sock`);
    equal((await Deno.lstat(socket)).mode! & 0o777, 0o600);
    const health = await unixFetch(socket, "/healthz");
    equal(Health.parse(health.body).hypervisor.name, "qemu");
    const created = await unixFetch(socket, "/api/v1/vms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "web" }),
    });
    equal(created.status, 201);
    const ready = await unixFetch(socket, "/api/v1/vms/web/wait?state=running&timeout_ms=5000");
    const vm = VmRecord.parse(ready.body);
    equal(vm.state, "running");
    ok(vm.pid !== null);
    match(registry.get(vm.pid!)!.spec.cmdline, /tsc_early_khz=\d+ tsc=reliable|tsc=reliable/);
    // Files are private: state root-only, logs and runtime readable by the group at most.
    const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
    equal(await mode(`${dir}/state`), 0o700);
    equal(await mode(`${dir}/log`), 0o750);
    equal(await mode(`${dir}/run`), 0o750);
    equal(await mode(`${dir}/state/volant.db`), 0o600);
    const serial = registry.get(vm.pid!)!.spec.serialLog;
    equal(await mode(serial), 0o640, "the serial log (console sessions) is not world-readable");

    first.abort.abort();
    equal(await first.code, 0);
    equal(registry.get(vm.pid!)?.alive, true, "VMs keep running when volantd stops");
    equal(await exists(socket), false);
    ok(await exists(`${dir}/state/volant.db`));

    const second = start(["--config", config], registry, logs);
    await second.socket;
    const adopted = VmRecord.parse((await unixFetch(socket, "/api/v1/vms/web")).body);
    equal(adopted.state, "running");
    equal(adopted.pid, vm.pid);

    const twin = start(["--config", config], registry, logs);
    equal(await twin.code, 1);
    ok(
      logs.some((l) => /Another volantd is already serving/.test(l)),
      "the refusal names the cause",
    );
    equal(registry.get(vm.pid!)?.alive, true, "the refused daemon must not touch VMs");
    equal((await unixFetch(socket, "/healthz")).status, 200);

    const stopped = await unixFetch(socket, "/api/v1/vms/web/stop", { method: "POST" });
    equal(VmRecord.parse(stopped.body).state, "stopped");
    second.abort.abort();
    equal(await second.code, 0);
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("volantd flags and config errors", async () => {
  const registry = new FakeRegistry();
  const logs: string[] = [];
  equal(await main(["--help"]), 0);
  equal(await main(["--bogus"]), 2);
  const missing = start(["--config", "/nonexistent/volant.yaml"], registry, logs);
  equal(await missing.code, 1);
  ok(logs.some((l) => l.includes("/nonexistent/volant.yaml") && l.includes("not_found")));
  const { dir } = await setup();
  try {
    await Deno.writeTextFile(`${dir}/bad.yaml`, "api:\n  socket_mode: rw\n");
    const bad = start(["--config", `${dir}/bad.yaml`], registry, logs);
    equal(await bad.code, 1);
    ok(logs.some((l) => l.includes("api.socket_mode")));
    await Deno.writeTextFile(`${dir}/net.yaml`, "network:\n  bridge: a-bridge-name-too-long\n");
    const badNet = start(["--config", `${dir}/net.yaml`], registry, logs);
    equal(await badNet.code, 1);
    ok(logs.some((l) => l.includes("network.bridge") && l.includes("at most 15")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("volantd --hypervisor overrides hypervisor.name and $VOLANT_HYPERVISOR", async () => {
  const { dir, config } = await setup();
  const logs: string[] = [];
  /** Runs main until the driver is asked for; resolves to the hypervisor.name it was given. */
  async function chosen(args: string[], env: Record<string, string> = {}): Promise<string> {
    let name = "(driver never asked for)";
    const code = await main(["--config", config, ...args], {
      driverFactory: (resolved) => {
        name = resolved.hypervisor.name;
        return Promise.reject(new Error("stop here: the choice is what this test checks"));
      },
      networkFactory: () => new FakeHostNetwork(),
      env: (key) => env[key],
      logger: createLogger({ sink: (l) => logs.push(l) }),
    });
    equal(code, 1, "the driver factory's refusal ends the run");
    return name;
  }
  try {
    equal(await chosen([]), "auto");
    equal(await chosen(["--hypervisor", "firecracker"]), "firecracker");
    equal(await chosen([], { VOLANT_HYPERVISOR: "qemu" }), "qemu");
    equal(
      await chosen(["--hypervisor", "cloud-hypervisor"], { VOLANT_HYPERVISOR: "qemu" }),
      "cloud-hypervisor",
      "the flag wins over the environment",
    );
    await Deno.writeTextFile(config, "\nhypervisor:\n  name: qemu\n", { append: true });
    equal(await chosen([]), "qemu");
    equal(await chosen(["--hypervisor", "auto"]), "auto", "the flag wins over the file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("volantd --hypervisor with an unknown name is a usage error naming the choices", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...parts: unknown[]) => void errors.push(parts.join(" "));
  let code: number;
  try {
    code = await main(["--hypervisor", "kvmtool"], {
      driverFactory: () => Promise.reject(new Error("must not be reached")),
    });
  } finally {
    console.error = original;
  }
  equal(code, 2);
  equal(errors.length, 1);
  match(
    errors[0]!,
    /^volantd: --hypervisor: expected one of auto, qemu, cloud-hypervisor, firecracker, got "kvmtool"/,
  );
});

Deno.test("volantd refuses an open TCP listener at start and warns about api.tcp_insecure at every start", async () => {
  const { dir } = await setup();
  const registry = new FakeRegistry();
  const logs: string[] = [];
  const config = async (api: string[]) => {
    const path = `${dir}/tcp-${crypto.randomUUID().slice(0, 6)}.yaml`;
    await Deno.writeTextFile(
      path,
      [
        `state_dir: ${dir}/state`,
        `runtime_dir: ${dir}/run`,
        `log_dir: ${dir}/log`,
        `guest:`,
        `  dir: ${dir}/guest`,
        `api:`,
        ...api.map((l) => `  ${l}`),
      ].join("\n"),
    );
    return path;
  };
  try {
    let asked = 0;
    const refused = async (api: string[], why: RegExp) => {
      logs.length = 0;
      const code = await main(["--config", await config(api)], {
        driverFactory: () => {
          asked++;
          return Promise.resolve(new FakeDriver({ registry }));
        },
        networkFactory: () => new FakeHostNetwork(),
        env: () => undefined,
        logger: createLogger({ sink: (l) => logs.push(l) }),
      });
      equal(code, 1);
      const failed = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "volantd failed");
      match(failed?.error?.message ?? "", why);
      equal(await exists(`${dir}/run/volantd.sock`), false, "nothing listens");
    };
    await refused(
      ["tcp: 0.0.0.0:7777"],
      /^api\.tcp 0\.0\.0\.0:7777 is not a loopback address and no API token exists: .*volar tokens create/,
    );
    await refused(
      ["tcp: 10.9.8.7:7777", "tcp_insecure: true"],
      /^api\.tcp_insecure is allowed only with a loopback api\.tcp/,
    );
    equal(asked, 0, "refused before the hypervisor is even looked at");

    const insecure = await config(["socket_mode: 0o600", "tcp: 127.0.0.1:0", "tcp_insecure: true"]);
    for (const round of [1, 2]) {
      logs.length = 0;
      const abort = new AbortController();
      const listening = Promise.withResolvers<{ hostname: string; port: number }>();
      const code = main(["--config", insecure], {
        driverFactory: () => Promise.resolve(new FakeDriver({ registry })),
        networkFactory: () => new FakeHostNetwork({ agent: fakeGuestAgent(registry) }),
        env: () => undefined,
        signal: abort.signal,
        logger: createLogger({ sink: (l) => logs.push(l) }),
        onListening: (info) => listening.resolve(info.tcp!),
      });
      const tcp = await listening.promise;
      const warning = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "api.tcp_insecure");
      equal(warning?.level, "warn", `round ${round}: warned at every start`);
      match(warning.warning, /accepts requests without a token/);
      const res = await fetch(`http://${tcp.hostname}:${tcp.port}/api/v1/vms`);
      equal(res.status, 200, "no token needed");
      await res.body?.cancel();
      abort.abort();
      equal(await code, 0);
    }
  } finally {
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The server-sent events of a streamed body (comments dropped), as they arrive. */
async function* sseBlocks(res: Response): AsyncGenerator<Record<string, string>> {
  let buffered = "";
  for await (const text of res.body!.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block: Record<string, string> = {};
      for (const line of buffered.slice(0, end).split("\n")) {
        const m = /^(event|id|data): ?(.*)$/.exec(line);
        if (m) block[m[1]!] = m[2]!;
      }
      buffered = buffered.slice(end + 2);
      if (Object.keys(block).length > 0) yield block;
    }
  }
}

Deno.test("events survive a restart: a client resuming with Last-Event-ID gets exactly what it missed", async () => {
  const { dir, config } = await setup();
  const registry = new FakeRegistry();
  const logs: string[] = [];
  const http = Deno.createHttpClient({
    proxy: { transport: "unix", path: `${dir}/run/volantd.sock` },
  });
  const post = async (path: string, body?: unknown) => {
    const res = await unixFetch(`${dir}/run/volantd.sock`, path, {
      method: "POST",
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    ok(res.status < 300, `${path}: ${JSON.stringify(res.body)}`);
  };
  const waitFor = async (name: string, state: string) => {
    const res = await unixFetch(
      `${dir}/run/volantd.sock`,
      `/api/v1/vms/${name}/wait?state=${state}&timeout_ms=5000`,
    );
    equal(res.status, 200, JSON.stringify(res.body));
  };
  /** What an event says, for comparing sequences. */
  const say = (e: VolantEvent) =>
    e.type === "vm.state" ? `${e.name} ${e.from}→${e.to}` : `${e.name} ${e.type}`;
  try {
    const first = start(["--config", config], registry, logs);
    await first.socket;
    // A client follows while web is created and gets running.
    const abort = new AbortController();
    const res = await fetch("http://volant/api/v1/events", { client: http, signal: abort.signal });
    const reader = sseBlocks(res);
    const startsAt = Number((await reader.next()).value!.id);
    await post("/api/v1/vms", { name: "web" });
    await waitFor("web", "running");
    const seen: VolantEvent[] = [];
    while (seen.at(-1)?.type !== "vm.state" || say(seen.at(-1)!) !== "web starting→running") {
      const block = (await reader.next()).value!;
      if (block.data) seen.push(VolantEvent.parse(JSON.parse(block.data)));
    }
    deepEqual(seen.map(say), ["web null→pending", "web pending→starting", "web starting→running"]);
    equal(seen[0]!.id, startsAt + 1);
    const lastSeen = seen.at(-1)!.id;
    // It goes away; changes happen; the daemon restarts; more changes.
    abort.abort();
    await reader.return(undefined).catch(() => {});
    await post("/api/v1/vms/web/stop");
    await post("/api/v1/vms", { name: "db" });
    await waitFor("db", "running");
    first.abort.abort();
    equal(await first.code, 0);
    const second = start(["--config", config], registry, logs);
    await second.socket;
    await post("/api/v1/vms/web/start");
    await waitFor("web", "running");
    const missed = [
      "web running→stopping",
      "web stopping→stopped",
      "db null→pending",
      "db pending→starting",
      "db starting→running",
      "web stopped→starting",
      "web starting→running",
    ];
    // It comes back with the last id it saw: the missed events, in order, once; then live ones.
    const again = new AbortController();
    const resumed = await fetch("http://volant/api/v1/events", {
      client: http,
      signal: again.signal,
      headers: { "last-event-id": String(lastSeen) },
    });
    equal(resumed.status, 200);
    const got: VolantEvent[] = [];
    const reading = (async () => {
      for await (const block of sseBlocks(resumed)) {
        if (!block.data) continue;
        const event = VolantEvent.parse(JSON.parse(block.data));
        equal(block.id, String(event.id));
        got.push(event);
        if (got.length === missed.length) await post("/api/v1/vms/db/stop");
        if (say(event) === "db stopping→stopped") return;
      }
    })();
    const timer = setTimeout(() => again.abort(), 10_000);
    try {
      await reading;
    } finally {
      clearTimeout(timer);
    }
    deepEqual(got.map(say), [...missed, "db running→stopping", "db stopping→stopped"]);
    deepEqual(
      got.map((e) => e.id),
      Array.from({ length: got.length }, (_, i) => lastSeen + 1 + i),
      "ids continue from the one it saw, without a gap or a repeat",
    );
    again.abort();
    await post("/api/v1/vms/web/stop");
    second.abort.abort();
    equal(await second.code, 0);
  } finally {
    http.close();
    registry.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
