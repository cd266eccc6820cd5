import { ok } from "node:assert/strict";
import { startDaemon } from "./harness.ts";

// A guest that floods its console cannot fill the host's disk or the daemon's memory: the
// serial log is rotated at `limits.serial_log_bytes` and read in bounded chunks.
const CAP = 128 * 1024;
const FLOOD = 3_000_000;
const REPO = new URL("..", import.meta.url).pathname;

async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

async function size(path: string): Promise<number> {
  return await Deno.stat(path).then((s) => s.size, () => 0);
}

Deno.test({
  name: "a guest flooding its serial console: the log stays within its cap, volantd's RSS bounded",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const daemon = await startDaemon({
      config: ["limits:", `  serial_log_bytes: ${CAP}`, "  serial_log_files: 2"],
    });
    let cli: Deno.ChildProcess | undefined;
    try {
      const created = await daemon.volar("vms", "create", "flood");
      ok(created.code === 0, created.stderr);
      const before = await rssKb(daemon.pid()!);
      cli = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "main.ts",
          "volar",
          "--socket",
          daemon.socket,
          "vms",
          "console",
          "flood",
          "--linger",
          "0",
        ],
        cwd: REPO,
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const writer = cli.stdin.getWriter();
      let tail = "";
      let seen = 0;
      const reading = (async () => {
        for await (const chunk of cli!.stdout.pipeThrough(new TextDecoderStream())) {
          seen += chunk.length;
          tail = (tail + chunk).slice(-4096);
        }
      })();
      await writer.write(
        new TextEncoder().encode(
          `\nyes volant-serial-flood-line | head -c ${FLOOD}; echo flood-$((40+2))-done\n`,
        ),
      );
      const deadline = Date.now() + 240_000;
      while (!/flood-42-done/.test(tail) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      ok(/flood-42-done/.test(tail), `the flood did not finish (console showed ${seen} chars)`);
      // One more check interval for the last rotation.
      await new Promise((r) => setTimeout(r, 2_500));
      const log = `${daemon.dir}/log/vms/flood/serial.log`;
      const current = await size(log);
      const rotated = await size(`${log}.1`);
      const slack = 1024 * 1024; // what the guest can write between two checks (1 s) under TCG
      ok(current <= CAP + slack, `serial.log is ${current} bytes (cap ${CAP})`);
      ok(rotated > 0 && rotated <= CAP, `serial.log.1 is ${rotated} bytes (cap ${CAP})`);
      ok(await size(`${log}.2`) === 0, "only serial_log_files (2) files are kept");
      ok(current + rotated < FLOOD / 2, "most of the flood was not kept");
      const after = await rssKb(daemon.pid()!);
      ok(after - before < 64 * 1024, `volantd's RSS grew from ${before} to ${after} KiB`);
      await writer.close().catch(() => {});
      await reading.catch(() => {});
    } finally {
      try {
        cli?.kill("SIGKILL");
      } catch {
        // Already ended.
      }
      await cli?.status;
      await daemon.dispose();
    }
  },
});
