import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { formatMac, isUnicastMac, macFor, parseMac } from "./mac.ts";

Deno.test("parseMac() and formatMac() round-trip, any case and separator", () => {
  assert.deepEqual([...parseMac("02:AB:cd:00:11:ff")], [2, 0xab, 0xcd, 0, 0x11, 0xff]);
  assert.equal(formatMac(parseMac("02-AB-CD-00-11-FF")), "02:ab:cd:00:11:ff");
});

Deno.test("parseMac() refuses malformed addresses, naming the field", () => {
  for (
    const bad of ["", "02:00:00:00:00", "02:00:00:00:00:0g", "02:00-00:00:00:00", "0200.0000.0000"]
  ) {
    assert.throws(() => parseMac(bad, "vm.mac"), (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, /^vm\.mac: /);
      return true;
    });
  }
});

Deno.test("macFor() is 02 + the first five bytes of SHA-256(seed)", async () => {
  for (const seed of ["web", "db-1", "", "ünïcode"]) {
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(seed)),
    );
    const expected = formatMac(new Uint8Array([2, ...digest.subarray(0, 5)]));
    assert.equal(macFor(seed), expected);
    assert.ok(isUnicastMac(macFor(seed)));
  }
  assert.notEqual(macFor("web"), macFor("web2"));
});

Deno.test("isUnicastMac() refuses multicast, zero and malformed", () => {
  assert.ok(isUnicastMac("02:00:00:00:00:01"));
  assert.ok(!isUnicastMac("03:00:00:00:00:01"));
  assert.ok(!isUnicastMac("00:00:00:00:00:00"));
  assert.ok(!isUnicastMac("nope"));
});
