import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { NetlinkError, netlinkError } from "./error.ts";

Deno.test("netlinkError() words the message with the errno name first", () => {
  const err = netlinkError(-17, {
    op: "create bridge",
    subject: "link vbr0",
    link: "vbr0",
    phrases: { EEXIST: "link vbr0 already exists" },
  });
  assert.ok(err instanceof NetlinkError);
  assert.ok(err instanceof VolantError);
  assert.equal(err.message, "EEXIST: link vbr0 already exists");
  assert.equal(err.code, "network_error");
  assert.equal(err.errno, "EEXIST");
  assert.equal(err.errnoNumber, 17);
  assert.deepEqual(err.details, { errno: "EEXIST", op: "create bridge", link: "vbr0" });
  assert.deepEqual(err.toJSON().details, err.details);
});

Deno.test("netlinkError() falls back to a generic phrase and appends the kernel's text", () => {
  const err = netlinkError(
    22,
    { op: "add route", subject: "default via 10.0.0.1" },
    "Invalid prefix",
  );
  assert.equal(
    err.message,
    "EINVAL: cannot add route default via 10.0.0.1: invalid argument (kernel: Invalid prefix)",
  );
  assert.equal(err.kernelMessage, "Invalid prefix");
  assert.equal(err.details?.kernel, "Invalid prefix");
});

Deno.test("netlinkError() tells to run as root on EPERM", () => {
  const err = netlinkError(-1, { op: "create bridge", subject: "link vbr0" });
  assert.match(
    err.message,
    /^EPERM: not permitted to create bridge link vbr0: needs CAP_NET_ADMIN/,
  );
});
