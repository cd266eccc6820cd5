import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { buildDetach } from "./build.ts";

const hasCompiler = await new Deno.Command("musl-gcc", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((r) => r.success, () => false);

Deno.test({
  name: hasCompiler
    ? "detach: resets ignored signals, starts a new session and keeps the pid (exec)"
    : "detach: skipped: musl-gcc is not installed (apt-get install musl-tools)",
  ignore: !hasCompiler,
  async fn() {
    const a = await buildDetach();
    const b = await buildDetach();
    equal(a.compiler, "musl-gcc");
    deepEqual(a.data, b.data, "the same source and compiler give the same bytes");
    ok(a.data.byteLength < 64 * 1024, `detach is ${a.data.byteLength} bytes`);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/detach`, a.data, { mode: 0o755 });
      // A shell background job starts with SIGINT and SIGQUIT ignored; through detach it does not.
      const script =
        `trap "" INT QUIT; ${dir}/detach /bin/sh -c 'echo $$ $(cut -d" " -f6 /proc/$$/stat); ` +
        `grep -E "^Sig(Ign|Blk)" /proc/$$/status' & echo bg $!; wait`;
      const out = new TextDecoder().decode(
        (await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output()).stdout,
      );
      const bg = /^bg (\d+)$/m.exec(out)?.[1];
      const [pid, session] = (/^(\d+) (\d+)$/m.exec(out) ?? []).slice(1);
      equal(pid, bg, `the program keeps the background job's pid: ${out}`);
      equal(session, pid, "it leads a session of its own");
      // Standard signals (1–31); 32 and 33 belong to the C library and cannot be changed.
      const ignored = BigInt(`0x${/SigIgn:\s+([0-9a-f]+)/.exec(out)?.[1] ?? "f"}`);
      equal(ignored & 0x7fffffffn, 0n, `no standard signal ignored: ${out}`);
      ok(/SigBlk:\s+0+\n/.test(out), `no signal blocked: ${out}`);
      const bad = await new Deno.Command(`${dir}/detach`, { args: ["relative"], stderr: "piped" })
        .output();
      equal(bad.code, 2);
      ok(new TextDecoder().decode(bad.stderr).includes("usage: detach /ABSOLUTE/PROGRAM"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("detach: a missing compiler is named in the error", async () => {
  await rejects(() => buildDetach(["no-such-cc-volant"]), /no-such-cc-volant: not installed/);
});
