import { equal, rejects } from "node:assert/strict";
import { runTool, runToolOutput } from "./_tool.ts";

Deno.test("runTool() names the Debian package of a missing tool", async () => {
  await rejects(
    runTool("volant-no-such-tool", [], { apt: "erofs-utils" }),
    /volant-no-such-tool is missing: install it with `apt-get install erofs-utils`/,
  );
});

Deno.test("runTool() reports the exit code and stderr of a failing tool", async () => {
  await rejects(
    runTool("sh", ["-c", "echo first >&2; echo last words >&2; exit 3"], { apt: "dash" }),
    /sh -c .* failed \(exit 3\): first \| last words/,
  );
  const out = await runToolOutput("sh", ["-c", "echo out; echo err >&2; exit 1"], {
    apt: "dash",
    okCodes: [1],
  });
  equal(out.code, 1);
  equal(out.stdout, "out\n");
  equal(out.stderr, "err\n");
});
