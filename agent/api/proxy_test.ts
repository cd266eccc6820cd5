import assert from "node:assert/strict";
import { ErrorBody } from "../../schema/error.ts";
import { BUSYBOX, cannotRun, freePort, makeRoot, plugin, startHttpd } from "../workload/testing.ts";
import { Supervisor } from "../workload/supervisor.ts";
import { endToEndHeaders, proxyRoute } from "./proxy.ts";
import { createRouter } from "./router.ts";
import { startApi } from "./server.ts";

const skip = cannotRun();
/** Why these tests are skipped here, for their names (empty when they run). */
const SKIPPED = skip === false ? "" : ` (skipped: ${skip})`;

Deno.test("endToEndHeaders() drops hop-by-hop headers, those Connection names, and the secret", () => {
  const h = endToEndHeaders(
    new Headers({
      connection: "keep-alive, x-hop",
      "keep-alive": "timeout=5",
      "x-hop": "1",
      "transfer-encoding": "chunked",
      host: "kestrel",
      authorization: "Bearer the-vm-secret",
      "content-type": "text/plain",
      "content-length": "5",
      "x-end": "2",
    }),
  );
  assert.deepEqual([...h.keys()].sort(), ["content-length", "content-type", "x-end"]);
});

Deno.test({
  name: "any other /v1/* goes to the workload without /v1: method, query, headers, body, status" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const workload = await startHttpd();
    const api = startApi(createRouter([proxyRoute(workload.sup)]), {
      hostname: "127.0.0.1",
      port: 0,
    });
    const base = `http://127.0.0.1:${api.port}`;
    try {
      const page = await fetch(`${base}/v1/index.html`);
      assert.equal(page.status, 200);
      assert.equal(await page.text(), "index\n");
      const echo = await fetch(`${base}/v1/cgi-bin/echo?a=1&b=2`, {
        method: "PATCH",
        body: "some body",
      });
      assert.equal(echo.headers.get("x-workload"), "echo");
      assert.equal(await echo.text(), "method=PATCH uri=/cgi-bin/echo?a=1&b=2\nsome body");
      const missing = await fetch(`${base}/v1/nothing-here`);
      assert.equal(missing.status, 404, "the workload's own 404 passes through");
      await missing.body?.cancel();
      // The answer streams: the first line arrives while the workload still holds the second.
      const streamed = await fetch(`${base}/v1/cgi-bin/stream`);
      const reader = streamed.body?.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("one\n")) text += (await reader?.read())?.value ?? "";
      assert.ok(!text.includes("two"));
      await Deno.writeTextFile(`${workload.root}/tmp/go`, "");
      for (;;) {
        const chunk = await reader?.read();
        if (chunk === undefined || chunk.done) break;
        text += chunk.value;
      }
      assert.equal(text, "one\ntwo\n");
      // A large body arrives whole.
      const big = "x".repeat(300_000);
      await Deno.writeTextFile(`${workload.root}/www/big.txt`, big);
      assert.equal((await (await fetch(`${base}/v1/big.txt`)).text()).length, big.length);
      await workload.sup.stop(500);
      const down = await fetch(`${base}/v1/index.html`);
      assert.equal(down.status, 502);
      const body = ErrorBody.parse(await down.json());
      assert.match(body.message, /^workload web is not running: it is stopped/);
    } finally {
      await api.stop();
      await workload.close();
    }
  },
});

Deno.test({
  name: "/v1/* to a running workload that does not listen is a 502 naming the URL and cause" +
    SKIPPED,
  ignore: skip !== false,
  fn: async () => {
    const root = await makeRoot();
    const port = freePort();
    const sup = new Supervisor(
      plugin({
        name: "mute",
        workload: { entrypoint: ["/bin/sleep", "600"], base_url: `http://127.0.0.1:${port}/` },
      }),
      { root, busybox: BUSYBOX, echo: false, log: () => {} },
    );
    const api = startApi(createRouter([proxyRoute(sup)]), { hostname: "127.0.0.1", port: 0 });
    try {
      await sup.start();
      const res = await fetch(`http://127.0.0.1:${api.port}/v1/users?id=7`, { method: "DELETE" });
      assert.equal(res.status, 502);
      const body = ErrorBody.parse(await res.json());
      assert.match(
        body.message,
        new RegExp(
          `^workload mute did not answer DELETE http://127\\.0\\.0\\.1:${port}/users\\?id=7: .*refused`,
          "i",
        ),
      );
    } finally {
      await api.stop();
      await sup.stop(500);
      await Deno.remove(root, { recursive: true });
    }
  },
});
