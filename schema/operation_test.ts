import { deepEqual, equal, match, throws } from "node:assert/strict";
import { VolantError } from "./error.ts";
import { operationUrl, parseOperationInput, splitToolArguments, toolInput } from "./operation.ts";
import { AgentProxy, CallAction, CreateVm, GetImage, VmLogs, WaitVm } from "./operations/mod.ts";

function refusal(fn: () => unknown): VolantError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VolantError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

Deno.test("parseOperationInput() names every failing field of every part in one error", () => {
  const err = refusal(() =>
    parseOperationInput(WaitVm, {
      params: { name: "Bad_Name" },
      query: { state: "flying", timeout_ms: "soon" },
    })
  );
  equal(err.code, "invalid_argument");
  match(err.message, /^Invalid input: name: must be .*; query\.state: .*; query\.timeout_ms: /);
  deepEqual(
    (err.details?.issues as { field: string }[]).map((i) => i.field),
    ["name", "query.state", "query.timeout_ms"],
  );
  const ok = parseOperationInput(WaitVm, { params: { name: "web" } });
  deepEqual(ok.query, { state: "running", timeout_ms: 60_000 }, "defaults applied");
  equal(ok.body, undefined);
});

Deno.test("operationUrl() encodes parameters, passes the agent path through, adds the query", () => {
  equal(
    operationUrl(GetImage, { image: "127.0.0.1:5000/demo/nginx:1.0" }),
    "/api/v1/images/127.0.0.1%3A5000%2Fdemo%2Fnginx%3A1.0",
  );
  equal(
    operationUrl(AgentProxy, { name: "web", path: "/v1/status" }),
    "/api/v1/vms/web/agent/v1/status",
  );
  equal(
    operationUrl(VmLogs, { name: "web", tail: 5, follow: undefined }),
    "/api/v1/vms/web/logs?tail=5",
  );
  throws(() => operationUrl(VmLogs, {}), /missing path parameter name/);
  throws(() => operationUrl(CreateVm, { name: "web" }), /neither a path parameter nor a query/);
});

Deno.test("splitToolArguments() sorts a tool call into the parts, unknown fields refused", () => {
  deepEqual(splitToolArguments(VmLogs, { name: "web" }), {
    params: { name: "web" },
    query: { tail: 100 },
  });
  deepEqual(splitToolArguments(CreateVm, { name: "web", cpu_cores: 1 }), {
    params: {},
    query: {},
    body: { name: "web", cpu_cores: 1 },
  });
  deepEqual(splitToolArguments(CallAction, { name: "web", action: "x", body: "{}" }), {
    params: { name: "web", action: "x" },
    query: {},
    text: "{}",
  });
  const follow = refusal(() => splitToolArguments(VmLogs, { name: "web", follow: "1" }));
  equal(follow.message, "Invalid input: follow: unknown field");
  deepEqual(Object.keys(toolInput(VmLogs).shape).sort(), ["name", "since", "tail"]);
  deepEqual(Object.keys(toolInput(CallAction).shape).sort(), ["action", "body", "name"]);
});
