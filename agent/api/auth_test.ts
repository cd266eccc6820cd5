import assert from "node:assert/strict";
import { ErrorBody } from "../../schema/error.ts";
import { constantTimeEqual, requireSecret } from "./auth.ts";
import { createRouter } from "./router.ts";
import { apiRoutes } from "./routes.ts";

const SECRET = "Yx3_-k9".repeat(7);
const INFO = { name: "web", hostname: "web", status: "ok" as const, ip: null, mac: null };

function api(secret: string | undefined | (() => string | undefined)) {
  const seen: string[] = [];
  const routes = apiRoutes(INFO, { uptime: () => Promise.resolve(1) });
  const router = createRouter(routes);
  return {
    seen,
    handle: requireSecret(secret, (req) => {
      seen.push(new URL(req.url).pathname);
      return router(req);
    }),
  };
}

async function refused(res: Response, message: RegExp): Promise<void> {
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="kestrel"');
  const body = ErrorBody.parse(await res.json());
  assert.equal(body.code, "unauthenticated");
  assert.match(body.message, message);
}

Deno.test("kestrel API: no secret, a wrong one or another scheme is 401, /healthz included", async () => {
  const { handle, seen } = api(SECRET);
  const cases: Array<[HeadersInit, RegExp]> = [
    [{}, /Missing credentials: send the VM's secret as Authorization: Bearer <secret>/],
    [{ authorization: `Basic ${btoa(`x:${SECRET}`)}` }, /Missing credentials/],
    [{ authorization: "Bearer" }, /Missing credentials/],
    [{ authorization: `Bearer ${SECRET}x` }, /Wrong credentials/],
    [{ authorization: `Bearer ${SECRET.slice(0, -1)}` }, /Wrong credentials/],
    [{ authorization: `Bearer ${SECRET.replace("Y", "y")}` }, /Wrong credentials/],
  ];
  for (const path of ["/healthz", "/v1/net/check", "/v1/logs", "/nope"]) {
    for (const [headers, message] of cases) {
      await refused(
        await handle(new Request(`http://10.0.0.2:12751${path}`, { headers })),
        message,
      );
    }
  }
  const post = new Request("http://10.0.0.2:12751/v1/net/check", {
    method: "POST",
    body: JSON.stringify({ url: "http://10.0.0.3/" }),
  });
  await refused(await handle(post), /Missing credentials/);
  assert.deepEqual(seen, [], "no refused request reached a route");
});

Deno.test("kestrel API: the right secret reaches the routes", async () => {
  const { handle, seen } = api(SECRET);
  for (const scheme of ["Bearer", "bearer"]) {
    const res = await handle(
      new Request("http://10.0.0.2:12751/healthz", {
        headers: { authorization: `${scheme} ${SECRET}` },
      }),
    );
    assert.equal(res.status, 200);
    assert.equal((await res.json()).name, "web");
  }
  assert.deepEqual(seen, ["/healthz", "/healthz"]);
});

Deno.test("kestrel API: without a secret in the boot config every request is refused", async () => {
  for (const secret of [undefined, ""]) {
    const { handle, seen } = api(secret);
    await refused(
      await handle(
        new Request("http://10.0.0.2:12751/healthz", { headers: { authorization: "Bearer " } }),
      ),
      /no secret in its boot config/,
    );
    assert.deepEqual(seen, []);
  }
});

Deno.test("kestrel API: a secret read per request: once swapped, the old one is refused", async () => {
  let current: string | undefined = SECRET;
  const { handle, seen } = api(() => current);
  const ask = (secret: string) =>
    handle(
      new Request("http://10.0.0.2:12751/healthz", {
        headers: { authorization: `Bearer ${secret}` },
      }),
    );
  const before = await ask(SECRET);
  assert.equal(before.status, 200);
  await before.body?.cancel();
  const next = "N3w-".repeat(11);
  current = next;
  await refused(await ask(SECRET), /Wrong credentials/);
  const after = await ask(next);
  assert.equal(after.status, 200);
  await after.body?.cancel();
  current = undefined;
  await refused(await ask(next), /no secret/);
  assert.deepEqual(seen, ["/healthz", "/healthz"]);
});

Deno.test("constantTimeEqual: equal strings only, whatever the lengths", () => {
  assert.ok(constantTimeEqual(SECRET, SECRET));
  assert.ok(!constantTimeEqual("", SECRET));
  assert.ok(!constantTimeEqual(SECRET, ""));
  assert.ok(constantTimeEqual("", ""));
  assert.ok(!constantTimeEqual("é", "e"));
});
