import { equal } from "node:assert/strict";
import { findExecutable } from "./mod.ts";

Deno.test("findExecutable() searches PATH like a shell", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-proc-" });
  try {
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n");
    await Deno.writeTextFile(`${dir}/data`, "not executable");
    await Deno.chmod(`${dir}/tool`, 0o755);
    equal(await findExecutable("tool", `/nonexistent:${dir}/`), `${dir}/tool`);
    equal(await findExecutable("data", dir), null, "not executable");
    equal(await findExecutable("tool", "/nonexistent"), null);
    equal(await findExecutable(`${dir}/tool`, ""), `${dir}/tool`);
    equal(await findExecutable(`${dir}/data`), null);
    equal(await findExecutable(dir), null, "a directory is not an executable");
    equal(await findExecutable(""), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
