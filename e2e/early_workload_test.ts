/**
 * The workload does not wait for Deno: an appliance under kestrel whose workload stage 0 can
 * start (absolute program, numeric `uid:gid`) is started by stage 0 right after the network and
 * adopted by kestrel — output, exit status, restarts and health as if kestrel had started it,
 * and nothing of kestrel's (its secret) in the workload's root.
 */
import { equal, match, ok } from "node:assert/strict";
import { wgetInNetns } from "../net/testing.ts";
import { LogLine, VmRecord } from "../schema/mod.ts";
import { until } from "./faults.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { cgiScript, installHttpd } from "./httpd_appliance.ts";

const CONFIG = (name: string) =>
  [
    `version = "1"`,
    `strategy = "initramfs"`,
    `[plugin]`,
    `name = "${name}"`,
    `version = "0.1.0"`,
    `[mappings]`,
    `"./busybox" = "/bin/busybox"`,
    `"./www" = "/www"`,
    `[init]`,
    `mode = "kestrel"`,
    `[resources]`,
    `cpu_cores = 1`,
    `memory_mb = 256`,
    `[workload]`,
    // Before httpd (which sets its own signal dispositions): what the launch gave the process.
    `entrypoint = ["/bin/busybox", "sh", "-c", "/bin/busybox grep -E '^Sig(Ign|Blk):' /proc/$$/status; echo fds /proc/$$/fd/*; echo run-out; echo run-err >&2; exec /bin/busybox httpd -f -p 8080 -h /www"]`,
    `base_url = "http://127.0.0.1:8080"`,
    `user = "1000:1000"`,
    `workdir = "/www"`,
    `env = { GREETING = "it's \\"quoted\\" $HOME" }`,
    `[health_check]`,
    `kind = "http"`,
    `endpoint = "/index.html"`,
    `interval_ms = 500`,
    `start_period_ms = 0`,
  ].join("\n") + "\n";

// What the workload's own process looks like, read from a CGI child of httpd.
const PROBE = cgiScript(`p=$PPID
/bin/busybox grep -E "^(Uid|Gid):" /proc/$p/status
echo "sid $(/bin/busybox cut -d' ' -f6 /proc/$p/stat)"
echo "greeting $GREETING"
echo "cwd $(/bin/busybox readlink /proc/$p/cwd)"
echo "volant" /volant/*`);

/** Each run's own view of its launch, with its pid taken out (they differ). */
function launchViews(lines: LogLine[]): string[] {
  const views: string[] = [];
  let current: string[] = [];
  for (const l of lines) {
    if (l.stream !== "stdout") continue;
    if (/^Sig(Blk|Ign):|^fds /.test(l.line)) {
      current.push(l.line.replace(/\/proc\/\d+\//g, "/proc/PID/"));
    }
    if (l.line === "run-out") {
      views.push(current.join("\n"));
      current = [];
    }
  }
  return views;
}

async function logs(daemon: E2eDaemon, name: string): Promise<LogLine[]> {
  const text = await volarOk(daemon, "vms", "logs", name, "--json");
  return text.trim().split("\n").filter((l) => l !== "").map((l) => LogLine.parse(JSON.parse(l)));
}

Deno.test("stage 0 starts the workload before Deno; kestrel adopts it (output, exit, restart, health)", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    await installHttpd(daemon, "early", {
      config: CONFIG("early"),
      index: "early\n",
      cgi: {
        probe: PROBE,
        // Ends the workload from inside (its session's leader, the httpd kestrel watches; the
        // CGI's parent is httpd's per-connection child): kestrel must see the exit.
        crash: cgiScript("echo bye\nkill -TERM $(/bin/busybox cut -d' ' -f6 /proc/$PPID/stat)"),
      },
    });
    const vm = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "early", "--plugin", "early", "--json"),
    ));
    equal(vm.state, "running");
    equal(vm.workload?.healthy, true, "running means healthy");

    const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/early/serial.log`);
    const adopted = /workload early 0\.1\.0 started by stage 0 \(pid (\d+)\), adopted/.exec(serial);
    ok(adopted, `kestrel adopted the workload:\n${serial.slice(-3000)}`);
    const got = JSON.parse(await volarOk(daemon, "vms", "get", "early", "--timeline", "--json"));
    const t = VmRecord.shape.timeline.parse(got.timeline)!;
    ok(t.workload_ms! < t.runtime_ms!, `started before Deno: ${JSON.stringify(t)}`);
    ok(t.network_ms! <= t.workload_ms!, `network first: ${JSON.stringify(t)}`);

    // The first run's output came through stage 0's FIFOs, each on its stream.
    const first = await until("the first run's output", async () => {
      const lines = await logs(daemon!, "early");
      return lines.some((l) => l.line === "run-err") ? lines : undefined;
    }, 30_000);
    ok(first.some((l) => l.stream === "stdout" && l.line === "run-out"), JSON.stringify(first));
    ok(first.some((l) => l.stream === "stderr" && l.line === "run-err"), JSON.stringify(first));

    // Launched as kestrel would: ids, own session, default signals, workdir, env, only 0-2 open.
    const probe = await wgetInNetns(daemon.ns, `http://${vm.ip}:8080/cgi-bin/probe`);
    match(probe, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    match(probe, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    const sid = /^sid (\d+)$/m.exec(probe)?.[1];
    equal(sid, adopted[1], "the pid stage 0 reported leads the workload's session");
    match(probe, /^greeting it's "quoted" \$HOME$/m);
    match(probe, /^cwd \/www$/m);
    // Nothing of kestrel's (its secret, stage 0's settings) is left in the workload's root.
    match(probe, /^volant \/volant\/\*$/m);
    const pid = sid!;

    // The adopted run ends: kestrel gets its status through PID 1's reaper and restarts it.
    await wgetInNetns(daemon.ns, `http://${vm.ip}:8080/cgi-bin/crash`).catch(() => "");
    const after = await until("the workload restarted by kestrel and healthy", async () => {
      const r = await daemon!.api("/api/v1/vms/early");
      const now = VmRecord.parse(r.body);
      return now.workload && now.workload.restarts >= 1 && now.workload.healthy ? now : undefined;
    }, 60_000).catch(async (err) => {
      const tail = (await Deno.readTextFile(`${daemon!.dir}/log/vms/early/serial.log`)).slice(
        -3000,
      );
      throw new Error(`${err.message}; serial:\n${tail}`);
    });
    equal(after.workload?.restarts, 1);
    const all = await logs(daemon, "early");
    ok(
      all.some((l) => l.stream === "kestrel" && /was killed by SIGTERM/.test(l.line)),
      `the adopted run's end was seen with its signal: ${JSON.stringify(all.slice(-8))}`,
    );
    equal(all.filter((l) => l.line === "run-out").length, 2, "the second run's output too");
    // What each run's shell saw of its launch (signal dispositions and mask, open descriptors):
    // the run stage 0 started and the one kestrel started must not differ.
    const runs = launchViews(all);
    equal(runs.length, 2, JSON.stringify(all));
    equal(runs[0], runs[1], "stage 0 launched the workload exactly as kestrel does");
    const again = await wgetInNetns(daemon.ns, `http://${vm.ip}:8080/cgi-bin/probe`);
    const pid2 = /^sid (\d+)$/m.exec(again)?.[1];
    ok(pid2 !== undefined && pid2 !== pid, "a new process");
    await volarOk(daemon, "vms", "delete", "early");
  } finally {
    await daemon?.dispose();
  }
});
