import { equal, throws } from "node:assert/strict";
import { allocateUid, checkUidRange } from "./uid_range.ts";

const PASSWD = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n" +
  "ann:x:1000:1000::/home/ann:/bin/bash\n";
const GROUP = "root:x:0:\nkvm:x:993:\nbuilders:x:900050:ann\n";

Deno.test("checkUidRange() accepts a range no user or group holds", () => {
  checkUidRange({ start: 910_000, count: 1000 }, PASSWD, GROUP);
});

Deno.test("checkUidRange() names the user, group or bound a range runs into", () => {
  throws(
    () => checkUidRange({ start: 999, count: 2 }, PASSWD, GROUP),
    /security\.uid_range \[999, 2\] \(ids 999-1000\) holds user ann \(uid 1000\) of \/etc\/passwd/,
  );
  throws(
    () => checkUidRange({ start: 900_000, count: 100 }, PASSWD, GROUP),
    /holds group builders \(gid 900050\) of \/etc\/group/,
  );
  throws(() => checkUidRange({ start: 65_000, count: 1000 }, "", ""), /65534 \(nobody\)/);
  throws(() => checkUidRange({ start: 0, count: 10 }, "", ""), /within 1-4294967294/);
  throws(() => checkUidRange({ start: 4_294_967_290, count: 10 }, "", ""), /within/);
  throws(() => checkUidRange({ start: 5, count: 0 }, "", ""), /count of at least 1/);
});

Deno.test("allocateUid() hands out the lowest free id and refuses an exhausted range", () => {
  equal(allocateUid({ start: 10, count: 3 }, new Set()), 10);
  equal(allocateUid({ start: 10, count: 3 }, new Set([10, 11])), 12);
  throws(
    () => allocateUid({ start: 10, count: 3 }, new Set([10, 11, 12])),
    (e: Error) => /security\.uid_range \[10, 3\].* is exhausted/.test(e.message),
  );
});
