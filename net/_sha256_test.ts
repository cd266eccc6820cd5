import assert from "node:assert/strict";
import { sha256 } from "./_sha256.ts";

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("sha256() matches the FIPS 180-4 test vectors", () => {
  assert.equal(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    hex(sha256("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256() agrees with WebCrypto on every length around the block boundaries", async () => {
  for (let len = 0; len < 300; len++) {
    const data = crypto.getRandomValues(new Uint8Array(len));
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    assert.equal(hex(sha256(data)), hex(expected), `length ${len}`);
  }
});
