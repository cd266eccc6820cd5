import { equal, ok, throws } from "node:assert/strict";
import { Health } from "../schema/mod.ts";
import { unixFetch } from "./testing.ts";
import { assertNamespaceName, isInNamespace, NETNS_MARKER } from "./netns.ts";

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("namespace names are checked; an absent namespace is not entered", async () => {
  assertNamespaceName("volant");
  assertNamespaceName("volant-test_1.a");
  throws(() => assertNamespaceName("../etc"), /not a valid namespace name/);
  throws(() => assertNamespaceName(""), /not a valid namespace name/);
  equal(await isInNamespace(`volant-absent-${crypto.randomUUID().slice(0, 8)}`), false);
});

Deno.test({
  name: "volantd re-runs itself inside its network namespace and serves the shared socket",
  async fn() {
    const ns = `volant-test-${crypto.randomUUID().slice(0, 8)}`;
    const dir = await Deno.makeTempDir({ prefix: "volantd-netns-" });
    const socket = `${dir}/run/volantd.sock`;
    await Deno.writeTextFile(`${dir}/config.yaml`, "timeouts:\n  stop_term_ms: 100\n");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./testdata/fake_volantd.ts", import.meta.url).pathname],
      env: {
        VOLANT_NETNS: ns,
        VOLANT_STATE_DIR: `${dir}/state`,
        VOLANT_RUNTIME_DIR: `${dir}/run`,
        VOLANT_LOG_DIR: `${dir}/log`,
        VOLANT_GUEST_DIR: `${dir}/guest`,
        VOLANT_CONFIG: `${dir}/config.yaml`,
        [NETNS_MARKER]: "",
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines: Array<Record<string, unknown>> = [];
    let onReady!: (pid: number) => void;
    const ready = new Promise<number>((resolve) => (onReady = resolve));
    const reading = (async () => {
      let buffer = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        const parts = buffer.split("\n");
        buffer = parts.pop()!;
        for (const part of parts) {
          try {
            const line = JSON.parse(part);
            lines.push(line);
            if (line.msg === "volantd ready") onReady(line.pid);
          } catch {
            lines.push({ raw: part });
          }
        }
      }
      onReady(-1);
    })();
    try {
      const daemonPid = await ready;
      ok(daemonPid > 0, `daemon did not start: ${JSON.stringify(lines)}`);
      equal(daemonPid, child.pid, "volantd replaced itself in place (same PID)");
      equal(await ip("netns", "identify", String(daemonPid)), ns);
      ok(lines.some((l) => l.msg === "network namespace created" && l.netns === ns));
      const health = await unixFetch(socket, "/healthz");
      equal(Health.parse(health.body).status, "ok");
      child.kill("SIGTERM");
      equal((await child.status).code, 0);
      await reading;
      ok(lines.some((l) => l.msg === "shutting down; VMs keep running"), "SIGTERM was forwarded");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
      await reading;
      await ip("netns", "del", ns);
      await Deno.remove(dir, { recursive: true });
    }
    equal(await ip("netns", "list").then((l) => l.includes(ns)), false);
  },
});
