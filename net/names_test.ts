import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { IFNAME_MAX, TAP_PREFIX, tapNameFor, validateIfName } from "./names.ts";

function refused(name: string, pattern: RegExp): void {
  assert.throws(() => validateIfName(name, "network.bridge"), (err: unknown) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.code, "invalid_argument");
    assert.match(err.message, /^network\.bridge: /);
    assert.match(err.message, pattern);
    assert.equal(err.details?.field, "network.bridge");
    return true;
  });
}

Deno.test("validateIfName() accepts kernel-valid names up to 15 bytes", () => {
  for (const name of ["a", "vbr0", "eth0.100", "vt-web", "x".repeat(15), "br_1-a"]) {
    assert.equal(validateIfName(name, "f"), name);
  }
});

Deno.test("validateIfName() refuses what the kernel would", () => {
  refused("", /is empty/);
  refused("x".repeat(16), /16 bytes long \(at most 15\)/);
  refused("é".repeat(8), /16 bytes/); // 8 characters, 16 bytes of UTF-8
  refused(".", /'\.' or '\.\.'/);
  refused("..", /'\.' or '\.\.'/);
  for (const bad of ["a/b", "a:b", "a b", "a\tb", "tap%d", "a\nb", "a\x00b"]) {
    refused(bad, /contains/);
  }
});

Deno.test("tapNameFor() uses prefix + name when it fits", () => {
  assert.equal(tapNameFor("web"), `${TAP_PREFIX}web`);
  assert.equal(tapNameFor("web", "x-"), "x-web");
  const longest = "a".repeat(IFNAME_MAX - TAP_PREFIX.length);
  assert.equal(tapNameFor(longest), TAP_PREFIX + longest);
});

Deno.test("tapNameFor() hashes names that do not fit or are not [a-z0-9-]", () => {
  const long = "a-rather-long-vm-name";
  const tap = tapNameFor(long);
  assert.equal(tap, tapNameFor(long), "deterministic");
  assert.equal(tap.length, IFNAME_MAX);
  assert.match(tap, /^vt-a-r_[a-z2-7]{8}$/);
  assert.match(tapNameFor("Web.1"), /^vt-web_[a-z2-7]{8}$/);
  // The hashed form contains '_', which VM names cannot, so it never equals a plain form.
  assert.notEqual(tapNameFor("Web"), tapNameFor("web"));
});

Deno.test("tapNameFor() results are valid, unique and stay within 15 bytes", () => {
  const seen = new Map<string, string>();
  for (let i = 0; i < 5000; i++) {
    const vm = `vm-${i.toString(36)}-${"x".repeat(i % 40)}`;
    const tap = tapNameFor(vm);
    validateIfName(tap, "tap");
    assert.ok(tap.startsWith(TAP_PREFIX));
    assert.equal(seen.get(tap), undefined, `${vm} and ${seen.get(tap)} collide on ${tap}`);
    seen.set(tap, vm);
  }
});

Deno.test("tapNameFor() refuses bad prefixes and empty names", () => {
  assert.throws(() => tapNameFor("web", "toolongp"), /prefix/);
  assert.throws(() => tapNameFor("web", "A"), /prefix/);
  assert.throws(() => tapNameFor(""), /vmName/);
});
