import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { startDaemon } from "./testing.ts";
import { describeTarget, VolantClient } from "./client.ts";

async function caught(promise: Promise<unknown>): Promise<VolantError> {
  try {
    await promise;
  } catch (err) {
    ok(err instanceof VolantError, `expected a VolantError, got ${err}`);
    return err;
  }
  throw new Error("expected an error");
}

Deno.test("VolantClient speaks to a real volantd over its unix socket and TCP", async () => {
  const daemon = await startDaemon({ tcp: true });
  const unix = new VolantClient({ kind: "unix", socket: daemon.socket });
  const tcp = new VolantClient({ kind: "tcp", base: daemon.api! + "/", token: daemon.token! });
  const anonymous = new VolantClient({ kind: "tcp", base: daemon.api! });
  try {
    equal((await unix.health()).status, "ok");
    const created = await unix.createVm({ name: "web", cpu_cores: 2 });
    equal(created.state, "starting");
    const ready = await tcp.waitVm("web", { timeoutMs: 30_000 });
    equal(ready.state, "running");
    equal(ready.cpu_cores, 2);
    deepEqual((await tcp.listVms()).vms.map((vm) => vm.name), ["web"]);
    equal((await unix.stopVm("web")).state, "stopped");
    equal((await tcp.startVm("web")).state, "starting");
    equal((await unix.waitVm("web", { state: "running", timeoutMs: 30_000 })).state, "running");
    equal((await unix.restartVm("web")).state, "starting");
    equal((await unix.deleteVm("web")).name, "web");

    const missing = await caught(unix.getVm("web"));
    equal(missing.code, "not_found");
    equal(missing.message, "VM web does not exist");
    const invalid = await caught(tcp.createVm({ name: "x", memory_mb: 1 }));
    equal(invalid.code, "invalid_argument");
    match(invalid.message, /memory_mb/);
    const refused = await caught(anonymous.listVms());
    equal(refused.code, "unauthenticated");
    match(refused.message, /needs a bearer token.*VOLANT_TOKEN.*volar tokens create/);
  } finally {
    unix.close();
    tcp.close();
    anonymous.close();
    await daemon.stop();
  }
});

Deno.test("VolantClient maps connection failures to daemon_unreachable naming the target", async () => {
  const target = { kind: "unix" as const, socket: "/nonexistent/volantd.sock" };
  const client = new VolantClient(target);
  try {
    const err = await caught(client.listVms());
    equal(err.code, "daemon_unreachable");
    match(err.message, /unix socket \/nonexistent\/volantd\.sock: the socket does not exist/);
    equal(err.details?.target, target.socket);
    equal(describeTarget(target), "unix socket /nonexistent/volantd.sock");
  } finally {
    client.close();
  }
});

Deno.test("VolantClient rejects answers that do not match the schemas", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-client-" });
  const socket = `${dir}/odd.sock`;
  const server = Deno.serve({ path: socket, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/api/v1/vms") return Response.json({ vms: [{ name: "web" }] });
    if (path === "/healthz") return new Response("<html>proxy error</html>", { status: 502 });
    return Response.json({ error: "nope" }, { status: 404 });
  });
  const client = new VolantClient({ kind: "unix", socket });
  try {
    const shape = await caught(client.listVms());
    equal(shape.code, "internal");
    match(shape.message, /GET \/api\/v1\/vms with HTTP 200.*vms\.0\.state/);
    const html = await caught(client.health());
    match(html.message, /HTTP 502.*proxy error/);
    const body = await caught(client.getVm("web"));
    match(body.message, /HTTP 404.*"error":"nope"/);
    await rejects(client.deleteVm("web"), VolantError);
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
