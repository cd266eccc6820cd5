import { deepEqual, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { migrate } from "./migrate.ts";

const step = (version: number) => ({
  version,
  name: `m${version}`,
  up: `CREATE TABLE t${version} (x)`,
});

Deno.test("migrate applies every unrecorded migration, also one numbered below the highest", () => {
  const db = new DatabaseSync(":memory:");
  try {
    // A database that got 7 while 5 and 6 were still being written.
    deepEqual(migrate(db, [step(1), step(2), step(7)]), [1, 2, 7]);
    deepEqual(migrate(db, [step(1), step(2), step(5), step(6), step(7)]), [5, 6]);
    deepEqual(migrate(db, [step(1), step(2), step(5), step(6), step(7)]), []);
    throws(() => migrate(db, [step(1), step(2)]), /newer than this volantd knows/);
  } finally {
    db.close();
  }
});
