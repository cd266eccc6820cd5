import { deepEqual, equal, ok } from "node:assert/strict";
import { z } from "zod";
import { isTool, type Operation, pathParams, toolInput } from "../operation.ts";
import { OPERATIONS as TABLE } from "./mod.ts";

const OPERATIONS: readonly Operation[] = TABLE;

Deno.test("OPERATIONS: ids, routes and tool names are unique", () => {
  const ids = OPERATIONS.map((op) => op.operationId);
  equal(new Set(ids).size, ids.length, "operationIds");
  const routes = OPERATIONS.map((op) => `${op.method} ${op.path}`);
  equal(new Set(routes).size, routes.length, "method + path");
  const tools = OPERATIONS.flatMap((op) => isTool(op) ? [op.mcp.tool] : []);
  equal(new Set(tools).size, tools.length, "tool names");
});

Deno.test("OPERATIONS: every path parameter has a schema, and only those", () => {
  for (const op of OPERATIONS) {
    const declared = Object.keys(op.params?.shape ?? {}).sort();
    deepEqual(declared, pathParams(op).sort(), op.operationId);
  }
});

/**
 * POSTs a read token may send, and why: each reads, and checks what it does on the caller's
 * behalf against the caller's scope.
 */
const READ_POSTS: Record<string, string> = {
  runAgui: "AG-UI runs are POSTs; each tool call is checked like an MCP tools/call",
};

Deno.test("OPERATIONS: access follows the method; read tokens only read", () => {
  for (const op of OPERATIONS) {
    if (op.operationId in READ_POSTS) {
      equal(op.method, "POST", op.operationId);
      equal(op.access, "read", op.operationId);
      continue;
    }
    if (op.access === "read") equal(op.method, "GET", `${op.operationId} is read but not GET`);
    if (op.method !== "GET" && op.method !== "ANY") {
      ok(op.access === "admin" || op.access === "unix", `${op.operationId} changes state`);
    }
    if (op.access === "by_method") equal(op.method, "ANY", op.operationId);
  }
});

Deno.test("OPERATIONS: each operation is a tool or says why not; tools fit in one call", () => {
  for (const op of OPERATIONS) {
    if ("restOnly" in op.mcp) {
      ok(op.mcp.restOnly.length > 10, `${op.operationId}: a reason for REST only`);
      continue;
    }
    if (!isTool(op)) continue;
    const stream = op.stream?.kind;
    ok(stream !== "sse" && stream !== "websocket", `${op.operationId}: a tool cannot stream`);
    ok(op.access !== "unix", `${op.operationId}: unix-socket-only operations are no tools`);
    if (stream === "ndjson" || stream === "passthrough") {
      ok(op.mcp.output !== undefined, `${op.operationId}: declares its tool's answer`);
    }
    // The tool's input is the parts' fields side by side: no field may be in two parts.
    if (op.body !== undefined) ok(op.body instanceof z.ZodObject, `${op.operationId}: body`);
    const parts = [op.params, op.query, op.body as z.ZodObject | undefined]
      .map((p) => Object.keys(p?.shape ?? {}));
    const all = parts.flat();
    equal(new Set(all).size, all.length, `${op.operationId}: input fields clash`);
    for (const key of Object.keys(op.mcp.defaults ?? {})) {
      ok(key in toolInput(op).shape, `${op.operationId}: default for unknown field ${key}`);
    }
  }
});
