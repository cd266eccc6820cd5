import assert from "node:assert/strict";
import { ActionList } from "../../schema/agent.ts";
import { ErrorBody } from "../../schema/error.ts";
import { Action } from "../../schema/manifest.ts";
import { cannotRun, type HttpdWorkload, startHttpd } from "../workload/testing.ts";
import { actionRoutes } from "./actions.ts";
import { createRouter } from "./router.ts";
import { startApi } from "./server.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

const ACTIONS = {
  echo: Action.parse({ description: "says what it got", method: "PUT", path: "/cgi-bin/echo" }),
  slow: Action.parse({ method: "GET", path: "/cgi-bin/slow", timeout_ms: 200 }),
  missing: Action.parse({ path: "/cgi-bin/none" }),
};

/** The actions API of a real httpd workload, for the duration of `body`. */
async function withActions(
  body: (api: string, workload: HttpdWorkload) => Promise<void>,
): Promise<void> {
  const workload = await startHttpd(ACTIONS);
  const api = startApi(createRouter(actionRoutes(workload.sup)), {
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    await body(`http://127.0.0.1:${api.port}`, workload);
  } finally {
    await api.stop();
    await workload.close();
  }
}

Deno.test({
  name: "GET /v1/actions lists the manifest's actions" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withActions(async (api) => {
      const list = ActionList.parse(await (await fetch(`${api}/v1/actions`)).json());
      assert.deepEqual(list.actions, [
        {
          name: "echo",
          description: "says what it got",
          method: "PUT",
          path: "/cgi-bin/echo",
          timeout_ms: 30_000,
        },
        {
          name: "missing",
          description: null,
          method: "POST",
          path: "/cgi-bin/none",
          timeout_ms: 30_000,
        },
        { name: "slow", description: null, method: "GET", path: "/cgi-bin/slow", timeout_ms: 200 },
      ]);
    }),
});

Deno.test({
  name:
    "POST /v1/actions/<name> calls the workload with the action's method and path, query and body" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withActions(async (api) => {
      const res = await fetch(`${api}/v1/actions/echo?n=1`, {
        method: "POST",
        body: "payload 42",
        headers: { "content-type": "text/plain" },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-workload"), "echo");
      assert.equal(await res.text(), "method=PUT uri=/cgi-bin/echo?n=1\npayload 42");
      // Whatever the workload answers passes through, errors included.
      const missing = await fetch(`${api}/v1/actions/missing`, { method: "POST" });
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    }),
});

Deno.test({
  name: "POST /v1/actions/<name>: past its timeout_ms the answer is a 504 naming the action" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withActions(async (api) => {
      const res = await fetch(`${api}/v1/actions/slow`, { method: "POST" });
      assert.equal(res.status, 504);
      const body = ErrorBody.parse(await res.json());
      assert.equal(body.code, "timeout");
      assert.equal(
        body.message,
        "Action slow (GET /cgi-bin/slow) did not answer within 200 ms (its timeout_ms)",
      );
    }),
});

Deno.test({
  name: "POST /v1/actions/<name>: an unknown action is a 404 naming those there are; GET is 405" +
    SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withActions(async (api) => {
      const res = await fetch(`${api}/v1/actions/reboot`, { method: "POST" });
      assert.equal(res.status, 404);
      const body = ErrorBody.parse(await res.json());
      assert.equal(body.message, 'No action "reboot"; plugin web has: echo, missing, slow');
      assert.deepEqual(body.details?.available, ["echo", "missing", "slow"]);
      const get = await fetch(`${api}/v1/actions/echo`);
      assert.equal(get.status, 405);
      await get.body?.cancel();
    }),
});

Deno.test({
  name: "POST /v1/actions/<name>: a stopped workload is a 502 saying so" + SKIPPED,
  ignore: skip !== false,
  fn: () =>
    withActions(async (api, workload) => {
      await workload.sup.stop(500);
      const res = await fetch(`${api}/v1/actions/echo`, { method: "POST", body: "x" });
      assert.equal(res.status, 502);
      const body = ErrorBody.parse(await res.json());
      assert.match(body.message, /^workload web is not running: it is stopped/);
    }),
});
