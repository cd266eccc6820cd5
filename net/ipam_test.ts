import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  checkRequested,
  definePool,
  nextFree,
  poolSize,
  type PoolSpec,
  reservedAddresses,
} from "./ipam.ts";
import { formatIpv4, parseIpv4 } from "./ipv4.ts";

const POOL: PoolSpec = { subnet: "192.168.127.0/24", gateway: "192.168.127.1" };

/** A small seeded PRNG (mulberry32) so a failing property run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fails(fn: () => unknown, code: string, pattern: RegExp): VolantError {
  let caught: VolantError | undefined;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VolantError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    caught = err;
    return true;
  });
  return caught!;
}

Deno.test("definePool() validates subnet, gateway and range, naming the field", () => {
  const p = definePool({ ...POOL, rangeStart: "192.168.127.10", rangeEnd: "192.168.127.20" });
  assert.equal(formatIpv4(p.first), "192.168.127.10");
  assert.equal(formatIpv4(p.last), "192.168.127.20");
  assert.match(p.description, /192\.168\.127\.0\/24/);
  fails(
    () => definePool({ subnet: "192.168.127.1/24", gateway: "192.168.127.1" }),
    "invalid_argument",
    /^pool\.subnet: .*did you mean 192\.168\.127\.0\/24/,
  );
  fails(
    () => definePool({ subnet: "192.168.127.0/24", gateway: "10.0.0.1" }),
    "invalid_argument",
    /^pool\.gateway: 10\.0\.0\.1 is outside the subnet 192\.168\.127\.0\/24/,
  );
  fails(
    () => definePool({ subnet: "192.168.127.0/24", gateway: "192.168.127.0" }),
    "invalid_argument",
    /^pool\.gateway: .*network address/,
  );
  fails(
    () => definePool({ subnet: "192.168.127.0/24", gateway: "192.168.127.255" }),
    "invalid_argument",
    /^pool\.gateway: .*broadcast address/,
  );
  fails(
    () => definePool({ ...POOL, rangeStart: "192.168.128.1" }),
    "invalid_argument",
    /^pool\.rangeStart: .*outside the subnet/,
  );
  fails(
    () => definePool({ ...POOL, rangeEnd: "192.168.126.1" }),
    "invalid_argument",
    /^pool\.rangeEnd: .*outside the subnet/,
  );
  fails(
    () => definePool({ ...POOL, rangeStart: "192.168.127.9", rangeEnd: "192.168.127.8" }),
    "invalid_argument",
    /^pool\.rangeStart: .*after rangeEnd/,
  );
  fails(
    () => definePool({ subnet: "10.0.0.0/31", gateway: "10.0.0.1" }),
    "invalid_argument",
    /too small/,
  );
  fails(
    () => definePool({ ...POOL, rangeStart: "192.168.127.1", rangeEnd: "192.168.127.1" }),
    "invalid_argument",
    /holds no address/,
  );
  fails(
    () => definePool({ subnet: "fd00::/64", gateway: "fd00::1" }),
    "invalid_argument",
    /^pool\.subnet: .*IPv6 pools are not supported yet/,
  );
  fails(
    () =>
      definePool(POOL, "network.pool").toString() &&
      definePool({ ...POOL, gateway: "x" }, "network.pool"),
    "invalid_argument",
    /^network\.pool\.gateway: /,
  );
});

Deno.test("reservedAddresses() and poolSize() count network, broadcast and gateway out", () => {
  assert.deepEqual(reservedAddresses(POOL), ["192.168.127.0", "192.168.127.255", "192.168.127.1"]);
  assert.equal(poolSize(POOL), 253);
  assert.equal(poolSize({ subnet: "10.0.0.0/30", gateway: "10.0.0.1" }), 1);
  assert.equal(poolSize({ ...POOL, rangeStart: "192.168.127.10", rangeEnd: "192.168.127.19" }), 10);
  // A range covering the gateway does not hand it out.
  assert.equal(poolSize({ ...POOL, rangeStart: "192.168.127.0", rangeEnd: "192.168.127.9" }), 8);
});

Deno.test("nextFree() goes in numeric order: .9, .10, .11, never .10, .100", () => {
  const taken: string[] = [];
  const order: string[] = [];
  for (let i = 0; i < 120; i++) {
    const ip = nextFree(POOL, taken);
    order.push(ip);
    taken.push(ip);
  }
  assert.deepEqual(order.slice(0, 3), ["192.168.127.2", "192.168.127.3", "192.168.127.4"]);
  assert.deepEqual(order.slice(7, 10), ["192.168.127.9", "192.168.127.10", "192.168.127.11"]);
  const numeric = order.map((ip) => parseIpv4(ip));
  assert.deepEqual(numeric, [...numeric].sort((a, b) => a - b));
  assert.equal(order.at(-1), "192.168.127.121");
});

Deno.test("nextFree() fills gaps first and accepts integers", () => {
  const taken = ["192.168.127.2", "192.168.127.4", parseIpv4("192.168.127.3"), "10.9.9.9"];
  assert.equal(nextFree(POOL, taken), "192.168.127.5");
  assert.equal(nextFree(POOL, ["192.168.127.3"]), "192.168.127.2");
  fails(() => nextFree(POOL, ["not-an-ip"]), "invalid_argument", /^taken: /);
});

Deno.test("nextFree() property: never a taken or reserved address; exhaustion exactly when full", () => {
  const specs: PoolSpec[] = [
    { subnet: "10.0.0.0/28", gateway: "10.0.0.1" },
    { subnet: "10.0.0.0/27", gateway: "10.0.0.17" },
    {
      subnet: "172.16.0.0/26",
      gateway: "172.16.0.62",
      rangeStart: "172.16.0.10",
      rangeEnd: "172.16.0.62",
    },
    {
      subnet: "192.168.127.0/24",
      gateway: "192.168.127.1",
      rangeStart: "192.168.127.2",
      rangeEnd: "192.168.127.40",
    },
  ];
  const seed = Date.now() >>> 0;
  const rand = rng(seed);
  for (let round = 0; round < 400; round++) {
    const spec = specs[round % specs.length]!;
    const pool = definePool(spec);
    const reserved = new Set(reservedAddresses(spec).map((ip) => parseIpv4(ip)));
    const usable: number[] = [];
    for (let ip = pool.first; ip <= pool.last; ip++) if (!reserved.has(ip)) usable.push(ip);
    assert.equal(poolSize(pool), usable.length);
    // Random taken set: each usable address taken with probability p (sometimes all), plus
    // reserved and out-of-pool addresses thrown in.
    const p = rand() < 0.2 ? 1 : rand();
    const taken = new Set<number>(usable.filter(() => rand() < p));
    if (rand() < 0.5) { for (const r of reserved) taken.add(r); }
    taken.add(parseIpv4("8.8.8.8"));
    const free = usable.filter((ip) => !taken.has(ip));
    const context = `seed ${seed} round ${round} pool ${pool.description} taken ${taken.size}`;
    if (free.length === 0) {
      const err = fails(
        () => nextFree(pool, taken),
        "ip_pool_exhausted",
        /No free address left in pool/,
      );
      assert.match(err.message, new RegExp(spec.subnet.replaceAll(".", "\\.")), context);
    } else {
      const got = parseIpv4(nextFree(pool, taken));
      assert.ok(!taken.has(got), `${context}: got taken ${formatIpv4(got)}`);
      assert.ok(!reserved.has(got), `${context}: got reserved ${formatIpv4(got)}`);
      assert.equal(got, Math.min(...free), `${context}: not the lowest free address`);
    }
  }
});

Deno.test("checkRequested() tells taken/reserved (ip_unavailable) from outside (invalid_argument)", () => {
  const taken = ["192.168.127.7"];
  assert.equal(checkRequested(POOL, "192.168.127.8", taken), "192.168.127.8");
  fails(
    () => checkRequested(POOL, "192.168.127.7", taken),
    "ip_unavailable",
    /192\.168\.127\.7 is already leased in pool 192\.168\.127\.0\/24/,
  );
  fails(() => checkRequested(POOL, "192.168.127.1", taken), "ip_unavailable", /is the gateway/);
  fails(() => checkRequested(POOL, "192.168.127.255", taken), "invalid_argument", /outside pool/);
  fails(
    () => checkRequested(POOL, "192.168.128.5", taken),
    "invalid_argument",
    /^ip: 192\.168\.128\.5 is outside pool 192\.168\.127\.0\/24/,
  );
  fails(
    () => checkRequested({ ...POOL, rangeStart: "192.168.127.10" }, "192.168.127.5", []),
    "invalid_argument",
    /outside pool/,
  );
  fails(
    () => checkRequested({ ...POOL, rangeStart: "192.168.127.0" }, "192.168.127.0", []),
    "ip_unavailable",
    /network address/,
  );
  fails(() => checkRequested(POOL, "nope", taken), "invalid_argument", /^ip: /);
});
