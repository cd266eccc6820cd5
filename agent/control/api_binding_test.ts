import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { ApiBinding } from "./api_binding.ts";
import { NEW_SECRET, OLD_SECRET } from "./testing.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function status(url: string, secret: string): Promise<number> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${secret}` } });
  await res.body?.cancel();
  return res.status;
}

Deno.test("ApiBinding: setSecret() refuses the old secret at once; rebind() moves the listener", async () => {
  const binding = new ApiBinding(() => new Response("ok"), OLD_SECRET);
  const port = freePort();
  const first = binding.listen({ hostname: "127.0.0.1", port });
  try {
    assert.equal(binding.server, first);
    assert.equal(await status(`http://127.0.0.1:${port}/`, OLD_SECRET), 200);
    binding.setSecret(NEW_SECRET);
    assert.equal(await status(`http://127.0.0.1:${port}/`, OLD_SECRET), 401);
    assert.equal(await status(`http://127.0.0.1:${port}/`, NEW_SECRET), 200);
    const moved = await binding.rebind({ hostname: "127.0.0.2", port });
    assert.deepEqual([moved.hostname, moved.port, binding.server], ["127.0.0.2", port, moved]);
    await assert.rejects(() => status(`http://127.0.0.1:${port}/`, NEW_SECRET));
    assert.equal(await status(`http://127.0.0.2:${port}/`, NEW_SECRET), 200);
    assert.equal(await status(`http://127.0.0.2:${port}/`, OLD_SECRET), 401);
  } finally {
    await binding.stop();
  }
  assert.equal(binding.server, undefined);
  await binding.stop(); // twice is fine
});

Deno.test("ApiBinding: a rebind that cannot bind throws, and nothing listens", async () => {
  const binding = new ApiBinding(() => new Response("ok"), OLD_SECRET);
  const port = freePort();
  binding.listen({ hostname: "127.0.0.1", port });
  const blocker = Deno.listen({ hostname: "127.0.0.3", port });
  try {
    await assert.rejects(
      () => binding.rebind({ hostname: "127.0.0.3", port }),
      (err) => err instanceof VolantError && err.code === "network_error",
    );
    assert.equal(binding.server, undefined);
    await assert.rejects(() => status(`http://127.0.0.1:${port}/`, OLD_SECRET));
  } finally {
    blocker.close();
    await binding.stop();
  }
});
