import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  broadcastOf,
  cidrContains,
  formatCidr,
  formatIpv4,
  netmask,
  networkOf,
  overlaps,
  parseCidr,
  parseInterfaceAddress,
  parseIpv4,
} from "./ipv4.ts";

function refused(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VolantError, String(err));
    assert.equal(err.code, "invalid_argument");
    assert.ok(err.message.startsWith(`${field}: `), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("parseIpv4() and formatIpv4() round-trip the whole range edges", () => {
  for (
    const [text, n] of [["0.0.0.0", 0], ["255.255.255.255", 0xffffffff], ["10.0.0.1", 0x0a000001], [
      "192.168.127.10",
      0xc0a87f0a,
    ]] as const
  ) {
    assert.equal(parseIpv4(text), n);
    assert.equal(formatIpv4(n), text);
  }
  for (let i = 0; i < 1000; i++) {
    const n = Math.floor(Math.random() * 2 ** 32);
    assert.equal(parseIpv4(formatIpv4(n)), n);
  }
});

Deno.test("parseIpv4() refuses malformed input, naming the field", () => {
  for (const bad of ["", "1.2.3", "1.2.3.4.5", "1.2.3.x", "01.2.3.4", " 1.2.3.4", "1.2.3.-4"]) {
    refused(() => parseIpv4(bad, "gw"), "gw", /not an IPv4 address/);
  }
  refused(() => parseIpv4("1.2.3.256", "gw"), "gw", /octet 256 > 255/);
  refused(() => parseIpv4("fe80::1", "gw"), "gw", /IPv6 addresses are not supported yet/);
  assert.throws(() => formatIpv4(2 ** 32), RangeError);
});

Deno.test("parseCidr() parses blocks and refuses host bits with a hint", () => {
  assert.deepEqual(parseCidr("192.168.127.0/24"), { network: 0xc0a87f00, prefix: 24 });
  assert.deepEqual(parseCidr("0.0.0.0/0"), { network: 0, prefix: 0 });
  assert.deepEqual(parseCidr("10.0.0.7/32"), { network: 0x0a000007, prefix: 32 });
  refused(
    () => parseCidr("192.168.127.5/24", "subnet"),
    "subnet",
    /did you mean 192\.168\.127\.0\/24/,
  );
  refused(() => parseCidr("10.0.0.0", "subnet"), "subnet", /no prefix length/);
  refused(() => parseCidr("10.0.0.0/33", "subnet"), "subnet", /prefix length "33"/);
  refused(() => parseCidr("10.0.0.0/024", "subnet"), "subnet", /prefix length/);
  refused(() => parseCidr("fd00::/64", "subnet"), "subnet", /IPv6 networks are not supported yet/);
});

Deno.test("parseInterfaceAddress() keeps host bits", () => {
  assert.deepEqual(parseInterfaceAddress("192.168.127.1/24"), { address: 0xc0a87f01, prefix: 24 });
  refused(() => parseInterfaceAddress("192.168.127.1", "addr"), "addr", /no prefix length/);
});

Deno.test("netmask(), broadcastOf(), networkOf(), cidrContains() agree", () => {
  assert.equal(netmask(0), 0);
  assert.equal(netmask(32), 0xffffffff);
  assert.equal(netmask(24), 0xffffff00);
  const c = parseCidr("10.1.2.0/23");
  assert.equal(formatIpv4(broadcastOf(c)), "10.1.3.255");
  assert.equal(formatCidr(networkOf(parseIpv4("10.1.3.77"), 23)), "10.1.2.0/23");
  assert.ok(cidrContains(c, parseIpv4("10.1.3.255")));
  assert.ok(!cidrContains(c, parseIpv4("10.1.4.0")));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), 0xffffffff));
});

Deno.test("overlaps() is true exactly when the blocks share an address", () => {
  assert.ok(overlaps("10.0.0.0/8", "10.200.0.0/16"));
  assert.ok(overlaps("10.200.0.0/16", "10.0.0.0/8"));
  assert.ok(overlaps("10.0.0.0/24", "10.0.0.0/24"));
  assert.ok(!overlaps("10.0.0.0/24", "10.0.1.0/24"));
  assert.ok(overlaps("0.0.0.0/0", "1.2.3.4/32"));
  // Property: compare with a brute-force check on small random blocks.
  for (let i = 0; i < 500; i++) {
    const base = 0x0a000000;
    const mk = () =>
      networkOf(base + Math.floor(Math.random() * 64), 26 + Math.floor(Math.random() * 7));
    const a = mk();
    const b = mk();
    let shared = false;
    for (let ip = a.network; ip <= broadcastOf(a); ip++) if (cidrContains(b, ip)) shared = true;
    assert.equal(overlaps(a, b), shared, `${formatCidr(a)} vs ${formatCidr(b)}`);
  }
});
