import { deepEqual, throws } from "node:assert/strict";
import { parseKestrelArgs } from "./args.ts";

Deno.test("parseKestrelArgs() reads every flag in both forms", () => {
  deepEqual(parseKestrelArgs([]), {});
  deepEqual(parseKestrelArgs(["--dry-run", "--wait", "--cmdline", "a b"]), {
    "dry-run": true,
    wait: true,
    cmdline: "a b",
  });
  deepEqual(parseKestrelArgs(["--cmdline=x=1"]), { cmdline: "x=1" });
  deepEqual(parseKestrelArgs(["-h"]), { help: true });
  deepEqual(parseKestrelArgs(["--version"]), { version: true });
});

Deno.test("parseKestrelArgs() names the bad argument", () => {
  throws(() => parseKestrelArgs(["--bogus"]), /Unknown option '--bogus'/);
  throws(() => parseKestrelArgs(["extra"]), /Unexpected argument 'extra'/);
  throws(() => parseKestrelArgs(["--cmdline"]), /--cmdline <value>' argument missing/);
});
