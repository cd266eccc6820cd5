import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { cString, describeErrno, errnoName, errnoText } from "./libc.ts";

Deno.test("errnoName() names the errnos netlink returns, negative or positive", () => {
  const expected: [number, string][] = [
    [1, "EPERM"],
    [2, "ENOENT"],
    [17, "EEXIST"],
    [19, "ENODEV"],
    [16, "EBUSY"],
    [22, "EINVAL"],
    [98, "EADDRINUSE"],
    [99, "EADDRNOTAVAIL"],
    [101, "ENETUNREACH"],
    [105, "ENOBUFS"],
    [95, "EOPNOTSUPP"],
    [34, "ERANGE"],
    [3, "ESRCH"],
  ];
  for (const [n, name] of expected) {
    assert.equal(errnoName(n), name);
    assert.equal(errnoName(-n), name);
  }
  assert.equal(errnoName(4242), "E4242");
});

Deno.test("describeErrno() adds the description", () => {
  assert.equal(describeErrno(-17), "EEXIST (File exists)");
  assert.equal(describeErrno(4242), "E4242 (errno 4242)");
  assert.equal(errnoText(19), "No such device");
});

Deno.test("cString() terminates with NUL and refuses embedded NUL", () => {
  assert.deepEqual([...cString("ab", "f")], [97, 98, 0]);
  assert.throws(() => cString("a\0b", "name"), (err: unknown) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.code, "invalid_argument");
    assert.match(err.message, /^name: /);
    return true;
  });
});
