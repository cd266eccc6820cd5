import assert from "node:assert/strict";
import { describeErrno, errnoName } from "./errno.ts";

Deno.test("errnoName() names common errno values, negative ones too", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoName(2), "ENOENT");
  assert.equal(errnoName(16), "EBUSY");
  assert.equal(errnoName(-17), "EEXIST");
  assert.equal(errnoName(95), "EOPNOTSUPP");
});

Deno.test("errnoName() and describeErrno() fall back to the number for unknown values", () => {
  assert.equal(errnoName(4000), "E4000");
  assert.equal(describeErrno(4000), "E4000 (errno 4000)");
  assert.equal(describeErrno(22), "EINVAL (Invalid argument)");
});
