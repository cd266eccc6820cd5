import { deepEqual, equal } from "node:assert/strict";
import { VolantError } from "../schema/mod.ts";
import { createLogger } from "./log.ts";

Deno.test("logger writes one JSON object per line with level filtering and child fields", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "info",
    sink: (l) => lines.push(l),
    now: () => new Date("2025-01-01T00:00:00Z"),
  });
  log.debug("hidden");
  log.child({ vm: "web" }).warn("slow", { ms: 5, error: new VolantError("timeout", "late") });
  equal(lines.length, 1);
  deepEqual(JSON.parse(lines[0]!), {
    ts: "2025-01-01T00:00:00.000Z",
    level: "warn",
    msg: "slow",
    vm: "web",
    ms: 5,
    error: { name: "VolantError", code: "timeout", message: "late" },
  });
});

Deno.test("logger appends to a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = createLogger({ file: `${dir}/d.log` });
    log.info("one");
    log.error("two");
    const lines = (await Deno.readTextFile(`${dir}/d.log`)).trim().split("\n");
    deepEqual(lines.map((l) => JSON.parse(l).msg), ["one", "two"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
