import { deepEqual, equal, match, ok } from "node:assert/strict";
import { ERROR_STATUS, ErrorBody, Health, VmList, VmRecord } from "../../schema/mod.ts";
import { makeTestEnv, testApp } from "../testing.ts";
import { VERSION } from "../version.ts";

function post(body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

async function expectError(res: Response, code: keyof typeof ERROR_STATUS): Promise<ErrorBody> {
  const body = ErrorBody.parse(await res.json());
  equal(body.code, code, body.message);
  equal(res.status, ERROR_STATUS[code]);
  return body;
}

Deno.test("API: VM lifecycle over HTTP, bodies validate against the schemas", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    const health = Health.parse(await (await app.request("/healthz")).json());
    deepEqual(health, {
      status: "ok",
      version: VERSION,
      hypervisor: {
        name: "qemu",
        version: "fake-1.0",
        kvm: false,
        acceleration: { accel: "tcg", reason: "software emulation", probe: null },
      },
      vms: 0,
    });

    const created = await app.request("/api/v1/vms", post({ name: "web", cpu_cores: 1 }));
    equal(created.status, 201);
    equal(VmRecord.parse(await created.json()).state, "starting");

    const waited = await app.request("/api/v1/vms/web/wait?state=running&timeout_ms=5000");
    equal(waited.status, 200);
    const running = VmRecord.parse(await waited.json());
    equal(running.state, "running");
    ok(running.boot_ms !== null);

    const list = VmList.parse(await (await app.request("/api/v1/vms")).json());
    deepEqual(list.vms.map((v) => v.name), ["web"]);
    equal(VmRecord.parse(await (await app.request("/api/v1/vms/web")).json()).name, "web");

    const stopped = await app.request("/api/v1/vms/web/stop", { method: "POST" });
    equal(stopped.status, 200);
    equal(VmRecord.parse(await stopped.json()).state, "stopped");
    const started = await app.request("/api/v1/vms/web/start", { method: "POST" });
    equal(VmRecord.parse(await started.json()).state, "starting");
    const restarted = await app.request("/api/v1/vms/web/restart", { method: "POST" });
    equal(VmRecord.parse(await restarted.json()).state, "starting");
    const deleted = await app.request("/api/v1/vms/web", { method: "DELETE" });
    equal(deleted.status, 200);
    equal(VmRecord.parse(await deleted.json()).name, "web");
    await expectError(await app.request("/api/v1/vms/web"), "not_found");
    equal(env.registry.alive().length, 0);

    const access = env.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "http");
    ok(
      access.some((l) => l.method === "DELETE" && l.path === "/api/v1/vms/web" && l.status === 200),
    );
    ok(access.some((l) => l.path === "/api/v1/vms/web" && l.status === 404));
  } finally {
    await env.dispose();
  }
});

Deno.test("API: errors carry the code and the status from ERROR_STATUS", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    const bad = await expectError(
      await app.request("/api/v1/vms", post({ name: "Bad_Name" })),
      "invalid_argument",
    );
    match(bad.message, /name/);
    const range = await expectError(
      await app.request("/api/v1/vms", post({ name: "big", memory_mb: 1 })),
      "invalid_argument",
    );
    match(range.message, /memory_mb/);
    const image = await expectError(
      await app.request("/api/v1/vms", post({ name: "job", image: "oci:layouts/app" })),
      "invalid_argument",
    );
    match(image.message, /^Invalid input: image: .*"layouts\/app" is not absolute \(expected /);
    await expectError(await app.request("/api/v1/vms", post("{not json")), "invalid_argument");
    await expectError(
      await app.request("/api/v1/vms", post({ name: "x", extra: 1 })),
      "invalid_argument",
    );
    await expectError(await app.request("/api/v1/vms", { method: "POST" }), "invalid_argument");
    const kernel = await expectError(
      await app.request("/api/v1/vms", post({ name: "k", kernel: "vmlinux-generic" })),
      "kernel_not_found",
    );
    match(kernel.message, /volant up/);
    equal(daemon.service.count(), 0, "failed creates leave no rows");

    equal((await app.request("/api/v1/vms", post({ name: "web" }))).status, 201);
    await expectError(await app.request("/api/v1/vms", post({ name: "web" })), "already_exists");
    await expectError(
      await app.request("/api/v1/vms/web/start", { method: "POST" }),
      "invalid_state",
    );
    await expectError(await app.request("/api/v1/vms/nope/stop", { method: "POST" }), "not_found");
    const unknown = await expectError(await app.request("/api/v1/nothing"), "not_found");
    match(unknown.message, /No route GET \/api\/v1\/nothing/);
    await expectError(await app.request("/api/v1/vms", { method: "PUT" }), "not_found");
    const q = await expectError(
      await app.request("/api/v1/vms/web/wait?state=flying"),
      "invalid_argument",
    );
    match(q.message, /query\.state/);
    await expectError(await app.request("/api/v1/vms/web/wait?timeout_ms=-1"), "invalid_argument");
    // The fake driver has no console socket: the answer says where the serial output is.
    const noConsole = await expectError(
      await app.request("/api/v1/vms/web/console"),
      "unsupported",
    );
    match(noConsole.message, /serial\.log/);
    await app.request("/api/v1/vms/web/stop", { method: "POST" });
    const stoppedConsole = await expectError(
      await app.request("/api/v1/vms/web/console"),
      "invalid_state",
    );
    match(stoppedConsole.message, /volar vms start web/);
  } finally {
    await env.dispose();
  }
});

Deno.test("API: wait semantics (timeout, crashed while waiting for running)", async () => {
  const env = await makeTestEnv();
  const { app, daemon } = testApp(env);
  try {
    daemon.driver.setBehavior({ readyDelayMs: 10_000 });
    equal((await app.request("/api/v1/vms", post({ name: "slow" }))).status, 201);
    const timeout = await expectError(
      await app.request("/api/v1/vms/slow/wait?state=running&timeout_ms=50"),
      "timeout",
    );
    match(timeout.message, /within 50 ms/);
    const waiting = app.request("/api/v1/vms/slow/wait?timeout_ms=10000");
    await new Promise((r) => setTimeout(r, 20));
    env.registry.kill(daemon.service.get("slow").pid!);
    const crashed = await expectError(await waiting, "invalid_state");
    match(crashed.message, /is crashed; it cannot become running/);
    // Waiting for the state a VM is in answers at once.
    const now = await app.request("/api/v1/vms/slow/wait?state=crashed&timeout_ms=0");
    equal(VmRecord.parse(await now.json()).state, "crashed");
  } finally {
    await env.dispose();
  }
});

Deno.test("API: /openapi.json lists every route with schemas", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    const res = await app.request("/openapi.json");
    equal(res.status, 200);
    const doc = JSON.parse(await res.text());
    equal(doc.openapi, "3.1.0");
    equal(doc.info.version, VERSION);
    deepEqual(Object.keys(doc.paths).sort(), [
      "/api/v1/agui",
      "/api/v1/deployments",
      "/api/v1/deployments/{name}",
      "/api/v1/deployments/{name}/scale",
      "/api/v1/deployments/{name}/wait",
      "/api/v1/events",
      "/api/v1/images",
      "/api/v1/images/{image}",
      "/api/v1/keys",
      "/api/v1/keys/{key_id}",
      "/api/v1/plugins",
      "/api/v1/plugins/{plugin}",
      "/api/v1/plugins/{plugin}/enabled",
      "/api/v1/plugins/{plugin}/manifest",
      "/api/v1/registries",
      "/api/v1/registries/{host}",
      "/api/v1/snapshots",
      "/api/v1/snapshots/{snapshot}",
      "/api/v1/tokens",
      "/api/v1/tokens/{token}",
      "/api/v1/vms",
      "/api/v1/vms/{name}",
      "/api/v1/vms/{name}/actions/{action}",
      "/api/v1/vms/{name}/agent/{path}",
      "/api/v1/vms/{name}/clone",
      "/api/v1/vms/{name}/console",
      "/api/v1/vms/{name}/logs",
      "/api/v1/vms/{name}/network-policy",
      "/api/v1/vms/{name}/restart",
      "/api/v1/vms/{name}/restore",
      "/api/v1/vms/{name}/snapshots",
      "/api/v1/vms/{name}/start",
      "/api/v1/vms/{name}/stats",
      "/api/v1/vms/{name}/stop",
      "/api/v1/vms/{name}/wait",
      "/healthz",
      "/openapi.json",
    ]);
    deepEqual(Object.keys(doc.paths["/api/v1/vms"]).sort(), ["get", "post"]);
    deepEqual(Object.keys(doc.paths["/api/v1/vms/{name}"]).sort(), ["delete", "get"]);
    const create = doc.paths["/api/v1/vms"].post;
    equal(
      create.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/VmCreateRequest",
    );
    equal(
      create.responses["201"].content["application/json"].schema.$ref,
      "#/components/schemas/VmRecord",
    );
    const wait = doc.paths["/api/v1/vms/{name}/wait"].get;
    deepEqual(wait.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`), [
      "path:name",
      "query:state",
      "query:timeout_ms",
    ]);
    const schemas = doc.components.schemas;
    deepEqual(schemas.VmCreateRequest.required, ["name"]);
    equal(schemas.VmCreateRequest.additionalProperties, false);
    ok(schemas.VmRecord.properties.boot_ms);
    for (const field of ["ip", "mac", "tap", "ports"]) {
      ok(schemas.VmRecord.properties[field], `VmRecord.${field}`);
      ok(schemas.VmRecord.required.includes(field), `VmRecord.${field} is always present`);
    }
    equal(schemas.VmCreateRequest.properties.ip.type, "string");
    ok(schemas.VmCreateRequest.properties.ip.pattern, "ip carries its IPv4 pattern");
    const publish = schemas.VmCreateRequest.properties.publish;
    equal(publish.type, "array");
    deepEqual(Object.keys(publish.items.properties).sort(), [
      "guest_port",
      "host_port",
      "protocol",
    ]);
    deepEqual(publish.items.properties.protocol.enum, ["tcp", "udp"]);
    deepEqual(schemas.ErrorBody.required, ["code", "message"]);
  } finally {
    await env.dispose();
  }
});

Deno.test("API: create with ip and publish; refusals are 409 with the field named", async () => {
  const env = await makeTestEnv();
  const { app } = testApp(env);
  try {
    const created = await app.request(
      "/api/v1/vms",
      post({ name: "web", ip: "192.168.127.50", publish: [{ host_port: 8080, guest_port: 80 }] }),
    );
    equal(created.status, 201);
    const vm = VmRecord.parse(await created.json());
    equal(vm.ip, "192.168.127.50");
    equal(vm.tap, "vt-web");
    deepEqual(vm.ports, [{ host_port: 8080, guest_port: 80, protocol: "tcp" }]);
    const taken = await expectError(
      await app.request("/api/v1/vms", post({ name: "api", ip: "192.168.127.50" })),
      "ip_unavailable",
    );
    equal(taken.details?.field, "ip");
    const port = await expectError(
      await app.request(
        "/api/v1/vms",
        post({ name: "api", publish: [{ host_port: 8080, guest_port: 81 }] }),
      ),
      "already_exists",
    );
    equal(port.details?.field, "publish[0].host_port");
    const listed = VmList.parse(await (await app.request("/api/v1/vms")).json());
    deepEqual(listed.vms.map((v) => [v.name, v.ip]), [["web", "192.168.127.50"]]);
  } finally {
    await env.dispose();
  }
});
