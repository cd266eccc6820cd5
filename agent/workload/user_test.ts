import assert from "node:assert/strict";
import { VolantError } from "../../schema/error.ts";
import { parsePasswd, resolveUser } from "./user.ts";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "# a comment",
  "broken:x:notanumber:1::/:/bin/sh",
  "short:x:5",
  "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
  "app:x:1000:1001:App:/srv/app:/bin/sh",
  "",
].join("\n");

Deno.test("parsePasswd() keeps well-formed entries and skips the rest", () => {
  assert.deepEqual(parsePasswd(PASSWD).map((e) => [e.name, e.uid, e.gid, e.home]), [
    ["root", 0, 0, "/root"],
    ["www-data", 33, 33, "/var/www"],
    ["app", 1000, 1001, "/srv/app"],
  ]);
});

Deno.test("resolveUser(): names, uid with its passwd group, uid:gid, uid without an entry", () => {
  assert.deepEqual(resolveUser("app", PASSWD), { uid: 1000, gid: 1001 });
  assert.deepEqual(resolveUser("www-data", PASSWD), { uid: 33, gid: 33 });
  assert.deepEqual(resolveUser("1000", PASSWD), { uid: 1000, gid: 1001 });
  assert.deepEqual(resolveUser("1000:7", PASSWD), { uid: 1000, gid: 7 });
  assert.deepEqual(resolveUser("4242", PASSWD), { uid: 4242, gid: 4242 });
  assert.deepEqual(resolveUser("0", undefined), { uid: 0, gid: 0 });
});

Deno.test("resolveUser(): an unknown name or an id out of range names workload.user", () => {
  assert.throws(() => resolveUser("ghost", PASSWD, "/r/etc/passwd"), (err: unknown) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.code, "invalid_argument");
    assert.equal(
      err.message,
      'workload.user "ghost": no such user in /r/etc/passwd; give a numeric uid or uid:gid, ' +
        "or add the user to the image",
    );
    return true;
  });
  assert.throws(() => resolveUser("app", undefined), /\/etc\/passwd does not exist/);
  assert.throws(() => resolveUser("99999999999", PASSWD), /ids must be at most 4294967295/);
  assert.throws(() => resolveUser("1:99999999999", PASSWD), /ids must be at most/);
});
