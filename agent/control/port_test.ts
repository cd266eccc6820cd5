import assert from "node:assert/strict";
import { findControlPort } from "./port.ts";

Deno.test("findControlPort(): the boot config's device when it is a character device", async () => {
  assert.equal(await findControlPort({ device: "/dev/null" }), "/dev/null");
  assert.equal(await findControlPort({}), undefined, "none named");
  assert.equal(await findControlPort({ device: "/dev/no-such-tty" }), undefined, "missing");
  const file = await Deno.makeTempFile();
  try {
    assert.equal(await findControlPort({ device: file }), undefined, "a plain file is no port");
  } finally {
    await Deno.remove(file);
  }
});
