import assert from "node:assert/strict";
import * as z from "zod/mini";
import { ErrorBody, VolantError } from "../../schema/error.ts";
import { errorResponse, json, parseJsonBody } from "./respond.ts";
import { createRouter, pathMatches, type Route } from "./router.ts";

const calls: string[] = [];
const ROUTES: Route[] = [
  { method: "GET", path: "/healthz", handle: () => json({ at: "healthz" }) },
  { method: "POST", path: "/v1/things", handle: () => json({ at: "post things" }, 201) },
  { method: "DELETE", path: "/v1/things", handle: () => json({ at: "delete things" }) },
  {
    method: "GET",
    path: "/v1/app/*",
    handle: (_req, url) => {
      calls.push(url.pathname + url.search);
      return json({ at: "app", path: url.pathname });
    },
  },
  {
    method: "GET",
    path: "/boom",
    handle: () => {
      throw new VolantError("timeout", "the workload did not answer", { ms: 5 });
    },
  },
  { method: "GET", path: "/crash", handle: () => Promise.reject(new TypeError("x is undefined")) },
];
const handle = createRouter(ROUTES);

const call = (method: string, path: string, body?: string) =>
  handle(new Request(`http://kestrel${path}`, { method, ...(body ? { body } : {}) }));

Deno.test("pathMatches(): exact paths, and prefixes ending in /*", () => {
  assert.ok(pathMatches("/healthz", "/healthz"));
  assert.ok(!pathMatches("/healthz", "/healthz/"));
  assert.ok(!pathMatches("/healthz", "/health"));
  assert.ok(pathMatches("/v1/app/*", "/v1/app"));
  assert.ok(pathMatches("/v1/app/*", "/v1/app/"));
  assert.ok(pathMatches("/v1/app/*", "/v1/app/a/b"));
  assert.ok(!pathMatches("/v1/app/*", "/v1/apple"));
  assert.ok(!pathMatches("/v1/app/*", "/v1"));
});

Deno.test("createRouter() dispatches by method and path", async () => {
  assert.deepEqual(await (await call("GET", "/healthz")).json(), { at: "healthz" });
  const post = await call("POST", "/v1/things");
  assert.equal(post.status, 201);
  assert.deepEqual(await post.json(), { at: "post things" });
  assert.deepEqual(await (await call("DELETE", "/v1/things")).json(), { at: "delete things" });
  const app = await call("GET", "/v1/app/users/7?x=1");
  assert.deepEqual(await app.json(), { at: "app", path: "/v1/app/users/7" });
  assert.deepEqual(calls.at(-1), "/v1/app/users/7?x=1");
});

Deno.test("createRouter(): unknown path is a 404 not_found listing the routes", async () => {
  const res = await call("GET", "/nope");
  assert.equal(res.status, 404);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = ErrorBody.parse(await res.json());
  assert.equal(body.code, "not_found");
  assert.match(
    body.message,
    /^No route GET \/nope; kestrel serves GET \/healthz, POST \/v1\/things/,
  );
});

Deno.test("createRouter(): a known path with another method is 405 with Allow", async () => {
  const res = await call("PUT", "/v1/things", "{}");
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "POST, DELETE");
  const body = ErrorBody.parse(await res.json());
  assert.equal(body.code, "invalid_argument");
  assert.equal(body.message, "PUT is not allowed on /v1/things; use POST, DELETE");
});

Deno.test("createRouter(): thrown errors become their JSON form and status", async () => {
  const boom = await call("GET", "/boom");
  assert.equal(boom.status, 504);
  assert.deepEqual(await boom.json(), {
    code: "timeout",
    message: "the workload did not answer",
    details: { ms: 5 },
  });
  const crash = await call("GET", "/crash");
  assert.equal(crash.status, 500);
  assert.deepEqual(await crash.json(), {
    code: "internal",
    message: "Internal error: x is undefined",
  });
});

Deno.test("errorResponse() maps codes to statuses", async () => {
  assert.equal(errorResponse(new VolantError("invalid_argument", "x")).status, 400);
  assert.equal(errorResponse(new VolantError("network_error", "x")).status, 500);
  const res = errorResponse("a string was thrown");
  assert.equal(res.status, 500);
  assert.equal((await res.json()).message, "Internal error: a string was thrown");
});

const Body = z.strictObject({ n: z.int(), name: z.optional(z.string()) });
const post = (body?: BodyInit) =>
  new Request("http://kestrel/x", { method: "POST", ...(body === undefined ? {} : { body }) });

async function invalid(req: Request, max?: number): Promise<string> {
  try {
    await parseJsonBody(req, Body, max);
  } catch (err) {
    assert.ok(err instanceof VolantError && err.code === "invalid_argument", String(err));
    return err.message;
  }
  throw new Error("parsed a bad body");
}

Deno.test("parseJsonBody() parses, and words each kind of bad body", async () => {
  assert.deepEqual(await parseJsonBody(post('{"n":3}'), Body), { n: 3 });
  assert.match(await invalid(post()), /body is missing/);
  assert.equal(await invalid(post("{}")), "Invalid input: n: required (number)");
  assert.equal(await invalid(post("[]")), "Invalid input: (body): expected object");
  assert.equal(await invalid(post('{"n":1.5}')), "Invalid input: n: expected an integer");
  assert.equal(
    await invalid(post('{"n":1,"a":1,"b":2}')),
    "Invalid input: a: unknown field; b: unknown field",
  );
  assert.match(await invalid(post("  ")), /body is missing/);
  assert.match(await invalid(post("{n:3}")), /not valid JSON/);
  assert.equal(await invalid(post('{"n":"3"}')), "Invalid input: n: expected number");
  assert.equal(await invalid(post('{"n":3,"name":7}')), "Invalid input: name: expected string");
  assert.match(
    await invalid(post(`{"n":3,"name":"${"x".repeat(100)}"}`), 64),
    /larger than 64 bytes/,
  );
});

Deno.test("createRouter(): a * route answers any method, only where no other route matches", async () => {
  const seen: string[] = [];
  const router = createRouter([
    { method: "GET", path: "/v1/logs", handle: () => json({ at: "logs" }) },
    {
      method: "*",
      path: "/v1/*",
      handle: (req, url) => {
        seen.push(`${req.method} ${url.pathname}`);
        return json({ at: "proxy" });
      },
    },
  ]);
  const go = (method: string, path: string) =>
    router(new Request(`http://kestrel${path}`, { method }));
  assert.deepEqual(await (await go("GET", "/v1/logs")).json(), { at: "logs" });
  const wrong = await go("DELETE", "/v1/logs");
  assert.equal(wrong.status, 405, "a method kestrel does not serve on its own path is not proxied");
  assert.equal(wrong.headers.get("allow"), "GET");
  for (const method of ["GET", "PUT", "HEAD", "OPTIONS"]) {
    assert.equal((await go(method, "/v1/users/7")).status, 200);
  }
  assert.deepEqual(seen, [
    "GET /v1/users/7",
    "PUT /v1/users/7",
    "HEAD /v1/users/7",
    "OPTIONS /v1/users/7",
  ]);
  const none = await go("GET", "/v2/x");
  assert.equal(none.status, 404);
  assert.match((await none.json()).message, /kestrel serves GET \/v1\/logs, any \/v1\/\*/);
});
