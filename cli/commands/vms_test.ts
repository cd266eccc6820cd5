import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { relative as relativePath } from "node:path";
import { ErrorBody, VmList, VmRecord } from "../../schema/mod.ts";
import { handImage, writeLayout } from "../../images/testing_registry.ts";
import { startDaemon, volar } from "../testing.ts";
import { formatSeconds, paint, stripAnsi } from "../format.ts";

Deno.test("volar vms: create → list → get → stop → start → restart → delete on a real volantd", async (t) => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  const getJson = async (name: string) => {
    const r = await volar([...s, "vms", "get", name, "--json"]);
    equal(r.code, 0, r.stderr);
    return VmRecord.parse(JSON.parse(r.stdout));
  };
  try {
    await t.step("create waits for running and prints the ready time", async () => {
      const r = await volar([...s, "vms", "create", "demo", "--cpu", "2", "--memory", "512"]);
      equal(r.code, 0, r.stderr);
      const vm = await getJson("demo");
      equal(vm.state, "running");
      equal(vm.cpu_cores, 2);
      equal(vm.memory_mb, 512);
      ok(vm.boot_ms !== null && vm.boot_ms >= 300, "the fake guest is ready after 300 ms");
      equal(r.stdout, `demo  running  ready in ${formatSeconds(vm.boot_ms!)}\n`);
      match(r.stderr, /^Creating demo…\nWaiting for demo to be running \(up to 2m\)…\n$/);
      equal(daemon.registry.alive().length, 1);
    });

    await t.step("list prints an aligned table", async () => {
      const r = await volar([...s, "vms", "list"]);
      equal(r.code, 0, r.stderr);
      equal(r.stderr, "");
      const [header, row, ...rest] = r.stdout.split("\n");
      deepEqual(rest, [""]);
      deepEqual(header!.split(/\s+/), [
        "NAME",
        "STATE",
        "IP",
        "CPU",
        "MEM(MiB)",
        "HYPERVISOR",
        "KVM",
        "PID",
        "BOOT",
        "AGE",
      ]);
      const vm = await getJson("demo");
      const cells = row!.split(/\s+/);
      deepEqual(cells.slice(0, 8), [
        "demo",
        "running",
        "192.168.127.2",
        "2",
        "512",
        "qemu",
        "no",
        String(vm.pid),
      ]);
      match(cells[8]!, /^\d+ms$|^\d+\.\ds$/);
      match(cells[9]!, /^\d+s$/);
      for (
        const [col, value] of [
          ["STATE", "running"],
          ["IP", "192.168.127.2"],
          ["PID", String(vm.pid)],
          ["AGE", cells[9]!],
        ]
      ) {
        equal(row!.indexOf(value!), header!.indexOf(col!), `${col} column is aligned`);
      }
      equal(stripAnsi(r.stdout), r.stdout, "no colours when stdout is not a terminal");
    });

    await t.step("list --json prints exactly a VmList", async () => {
      for (const args of [["vms", "list", "--json"], ["--json", "vms", "list"]]) {
        const r = await volar([...s, ...args]);
        equal(r.code, 0, r.stderr);
        equal(r.stderr, "");
        const list = VmList.parse(JSON.parse(r.stdout));
        deepEqual(list.vms.map((vm) => [vm.name, vm.state]), [["demo", "running"]]);
      }
    });

    await t.step("get prints key: value lines", async () => {
      const r = await volar([...s, "vms", "get", "demo"]);
      equal(r.code, 0, r.stderr);
      match(r.stdout, /^name: +demo$/m);
      match(r.stdout, /^state: +running$/m);
      match(r.stdout, /^memory: +512 MiB$/m);
      match(r.stdout, /^boot: +(\d+ms|\d+\.\ds)$/m);
      match(r.stdout, /^ip: +192\.168\.127\.2$/m);
      match(r.stdout, /^mac: +02(:[0-9a-f]{2}){5}$/m);
      match(r.stdout, /^tap: +vt-demo$/m);
      match(r.stdout, /^ports: +-$/m);
      ok(!/last error/.test(r.stdout), "last error only when set");
      const values = r.stdout.trimEnd().split("\n").map((l) => /^[a-z ]+: +/.exec(l)![0].length);
      equal(new Set(values).size, 1, "values are aligned");
    });

    let pid: number | null = null;
    await t.step("stop", async () => {
      pid = (await getJson("demo")).pid;
      const r = await volar([...s, "vms", "stop", "demo"]);
      equal(r.code, 0, r.stderr);
      equal(r.stdout, "demo  stopped\n");
      const vm = await getJson("demo");
      equal(vm.state, "stopped");
      equal(vm.pid, null);
      equal(daemon.registry.get(pid!)?.alive, false);
    });

    await t.step("start waits for running again", async () => {
      const r = await volar([...s, "vms", "start", "demo", "--timeout", "60s"]);
      equal(r.code, 0, r.stderr);
      const vm = await getJson("demo");
      equal(vm.state, "running");
      notEqual(vm.pid, pid);
      equal(r.stdout, `demo  running  ready in ${formatSeconds(vm.boot_ms!)}\n`);
      pid = vm.pid;
    });

    await t.step("restart --json prints the running VmRecord", async () => {
      const r = await volar([...s, "vms", "restart", "demo", "--json"]);
      equal(r.code, 0, r.stderr);
      equal(r.stderr, "", "no progress lines in --json mode off a terminal");
      const vm = VmRecord.parse(JSON.parse(r.stdout));
      equal(vm.state, "running");
      notEqual(vm.pid, pid, "a restart runs a new VMM");
      equal(daemon.registry.get(pid!)?.alive, false);
    });

    await t.step("delete (and its alias rm), then get is not_found with exit 1", async () => {
      const r = await volar([...s, "vms", "delete", "demo"]);
      equal(r.code, 0, r.stderr);
      equal(r.stdout, "demo  deleted\n");
      equal(daemon.registry.alive().length, 0);
      const gone = await volar([...s, "vms", "get", "demo"]);
      equal(gone.code, 1);
      equal(gone.stdout, "");
      equal(gone.stderr, "volar: VM demo does not exist\n");
      const json = await volar([...s, "vms", "get", "demo", "--json"]);
      equal(json.code, 1);
      equal(json.stdout, "");
      equal(ErrorBody.parse(JSON.parse(json.stderr)).code, "not_found");

      equal((await volar([...s, "vms", "create", "tmp", "--no-wait"])).code, 0);
      const rm = await volar([...s, "vms", "rm", "tmp"]);
      equal(rm.code, 0, rm.stderr);
      equal(rm.stdout, "tmp  deleted\n");
      const empty = await volar([...s, "vms", "list", "--json"]);
      deepEqual(VmList.parse(JSON.parse(empty.stdout)).vms, []);
    });
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar vms create: bad values are usage errors naming the flag; nothing is created", async () => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  try {
    equal((await volar([...s, "vms", "create", "web", "--no-wait"])).code, 0);
    const cases: [string[], RegExp][] = [
      [["vms", "create", "Bad_Name"], /argument 'name'.*lowercase letters/],
      [["vms", "create", "big", "--memory", "64"], /--memory 64.*>=128/],
      [["vms", "create", "big", "--memory", "999999"], /--memory 999999.*<=262144/],
      [["vms", "create", "big", "--cpu", "abc"], /'--cpu <count>' argument 'abc'.*whole number/],
      [["vms", "create", "big", "--cpu", "0"], /--cpu 0.*>=1/],
      [["vms", "create", "big", "--kernel", "vmlinuz"], /'--kernel <name>'.*vmlinux-generic/],
      [["vms", "create", "big", "--timeout", "soon"], /--timeout <duration>.*duration/],
      [["vms", "create", "big", "--kernel-cmdline", "caf\u00e9"], /--kernel-cmdline.*printable/],
      [["vms", "create", "big", "--ip", "192.168.127"], /--ip "192\.168\.127".*IPv4 address/],
      [
        ["vms", "create", "big", "--publish", "80"],
        /'--publish <host:guest\[\/udp\]>' argument '80'.*HOST:GUEST/,
      ],
      [["vms", "create", "big", "--publish", "0:80"], /--publish.*'0:80'.*host port.*1 to 65535/],
      [["vms", "create", "big", "--publish", "8080:70000"], /--publish.*'8080:70000'.*guest port/],
      [["vms", "create", "big", "--publish", "8080:80/sctp"], /--publish.*'sctp'.*tcp or udp/],
    ];
    for (const [args, message] of cases) {
      const r = await volar([...s, ...args]);
      equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      equal(r.stdout, "");
      match(r.stderr, /^volar: /);
      match(r.stderr, message);
      const json = await volar([...s, ...args, "--json"]);
      equal(json.code, 2);
      equal(ErrorBody.parse(JSON.parse(json.stderr)).code, "invalid_argument");
    }
    const dup = await volar([...s, "vms", "create", "web"]);
    equal(dup.code, 1, "a duplicate is the daemon's refusal, not a usage error");
    match(dup.stderr, /volar: VM web already exists/);
    const list = await volar([...s, "vms", "list", "--json"]);
    deepEqual(VmList.parse(JSON.parse(list.stdout)).vms.map((vm) => vm.name), ["web"]);
    equal(daemon.registry.alive().length, 1, "no VMM was started for a rejected request");
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar vms create: --no-wait, wait timeout, crash while waiting", async (t) => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  try {
    await t.step("--no-wait returns at starting", async () => {
      const r = await volar([...s, "vms", "create", "slow-a", "--no-wait"]);
      equal(r.code, 0, r.stderr);
      equal(r.stdout, "slow-a  starting\n");
      const json = await volar([...s, "vms", "restart", "slow-a", "--no-wait", "--json"]);
      equal(VmRecord.parse(JSON.parse(json.stdout)).state, "starting");
    });

    await t.step("a guest not ready within --timeout is a timeout error (exit 1)", async () => {
      const r = await volar([...s, "vms", "create", "slow-b", "--timeout", "400ms"]);
      equal(r.code, 1);
      equal(r.stdout, "");
      match(r.stderr, /volar: VM slow-b did not become running within 400ms \(it is starting\)/);
      match(r.stderr, /volar vms get slow-b/);
      const json = await volar([...s, "vms", "start", "slow-b", "--json"]);
      equal(json.code, 1, "starting a VM that is already starting is refused");
      equal(ErrorBody.parse(JSON.parse(json.stderr)).code, "invalid_state");
    });

    await t.step("a guest that crashes while volar waits is reported with its cause", async () => {
      const r = await volar([...s, "vms", "create", "crash-a"]);
      equal(r.code, 1);
      match(r.stderr, /volar: VM crash-a is crashed; it cannot become running/);
      const get = await volar([...s, "vms", "get", "crash-a"]);
      match(get.stdout, /^state: +crashed$/m);
      match(get.stdout, /^last error: +\S/m);
    });
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar vms: spinner on a terminal, colours unless NO_COLOR", async () => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  try {
    const r = await volar([...s, "vms", "create", "tty"], {
      outIsTerminal: true,
      errIsTerminal: true,
    });
    equal(r.code, 0, r.stderr);
    const vm = VmRecord.parse(
      JSON.parse((await volar([...s, "vms", "get", "tty", "--json"])).stdout),
    );
    const running = paint("green", "running", true);
    equal(r.stdout, `tty  ${running}  ready in ${formatSeconds(vm.boot_ms!)}\n`);
    const frames = r.stderr.split("\r\x1b[2K").filter((f) => f !== "");
    ok(frames.length >= 3, `the spinner redraws while waiting (${frames.length} frames)`);
    match(frames[0]!, /^⠋ Creating tty… 0\.\ds$/);
    ok(frames.some((f) => /Waiting for tty to be running/.test(f)));
    ok(r.stderr.endsWith("\r\x1b[2K"), "the spinner line is cleared at the end");

    const colored = await volar([...s, "vms", "list"], { outIsTerminal: true });
    ok(colored.stdout.startsWith(paint("bold", "NAME", true)), colored.stdout);
    const plain = await volar([...s, "vms", "list"], {
      outIsTerminal: true,
      env: { NO_COLOR: "1" },
    });
    equal(stripAnsi(plain.stdout), plain.stdout);
    match(plain.stdout, /^tty +running /m);
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar reaches volantd over TCP (--api, VOLANT_API_BASE) and by VOLANT_SOCKET", async () => {
  const daemon = await startDaemon({ tcp: true });
  try {
    ok(daemon.api);
    const created = await volar([
      ...["--api", daemon.api!, "--token", daemon.token!],
      ...["vms", "create", "net", "--json"],
    ]);
    equal(created.code, 0, created.stderr);
    equal(VmRecord.parse(JSON.parse(created.stdout)).state, "running");
    const byEnv = await volar(["vms", "list", "--json"], {
      env: { VOLANT_API_BASE: daemon.api!, VOLANT_TOKEN: daemon.token! },
    });
    equal(byEnv.code, 0, byEnv.stderr);
    deepEqual(VmList.parse(JSON.parse(byEnv.stdout)).vms.map((v) => v.name), ["net"]);
    const bySocketEnv = await volar(["vms", "get", "net", "--json"], {
      env: { VOLANT_SOCKET: daemon.socket },
    });
    equal(bySocketEnv.code, 0, bySocketEnv.stderr);
    const flagWins = await volar(["--socket", daemon.socket, "vms", "get", "net", "--json"], {
      env: { VOLANT_API_BASE: "http://127.0.0.1:9" },
    });
    equal(flagWins.code, 0, "--socket beats VOLANT_API_BASE: " + flagWins.stderr);
    const both = await volar(["--socket", daemon.socket, "--api", daemon.api!, "vms", "list"]);
    equal(both.code, 2);
    match(both.stderr, /--socket and --api both given/);
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar vms create --ip --publish: shown by get and list, refused when taken, freed on delete", async () => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  try {
    const r = await volar([
      ...s,
      "vms",
      "create",
      "web",
      "--ip",
      "192.168.127.50",
      "--publish",
      "8080:80",
      "--publish",
      "5353:53/udp",
      "--json",
    ]);
    equal(r.code, 0, r.stderr);
    const vm = VmRecord.parse(JSON.parse(r.stdout));
    equal(vm.ip, "192.168.127.50");
    equal(vm.tap, "vt-web");
    deepEqual(vm.ports, [
      { host_port: 5353, guest_port: 53, protocol: "udp" },
      { host_port: 8080, guest_port: 80, protocol: "tcp" },
    ]);
    const get = await volar([...s, "vms", "get", "web"]);
    match(get.stdout, /^ip: +192\.168\.127\.50$/m);
    match(get.stdout, /^ports: +5353:53\/udp, 8080:80\/tcp$/m);
    const list = await volar([...s, "vms", "list"]);
    match(list.stdout, /^web +running +192\.168\.127\.50 /m);

    const refusals: [string[], RegExp][] = [
      [["--ip", "192.168.127.50"], /ip: 192\.168\.127\.50 is already leased/],
      [["--ip", "10.9.9.9"], /ip: 10\.9\.9\.9 is outside pool 192\.168\.127\.0\/24/],
      [["--ip", "192.168.127.1"], /192\.168\.127\.1 is the gateway/],
      [
        ["--publish", "8080:81"],
        /publish\[0\]\.host_port: host port 8080\/tcp is already published by VM web/,
      ],
    ];
    for (const [flags, message] of refusals) {
      const refused = await volar([...s, "vms", "create", "other", ...flags]);
      equal(refused.code, 1, `${flags.join(" ")}: a refusal by the daemon (${refused.stderr})`);
      match(refused.stderr, message);
    }
    const none = await volar([...s, "vms", "get", "other"]);
    equal(none.code, 1, "no VM was left by a refused create");

    equal((await volar([...s, "vms", "delete", "web"])).code, 0);
    const again = await volar([
      ...s,
      "vms",
      "create",
      "other",
      "--ip",
      "192.168.127.50",
      "--publish",
      "8080:80",
      "--json",
    ]);
    equal(again.code, 0, `the address and the port are free again: ${again.stderr}`);
    equal(VmRecord.parse(JSON.parse(again.stdout)).ip, "192.168.127.50");
  } finally {
    await daemon.stop();
  }
});

Deno.test("volar vms create --image: local sources (oci:, docker-archive:) are imported; bad references name --image", async () => {
  const daemon = await startDaemon();
  const s = ["--socket", daemon.socket];
  const dir = await Deno.makeTempDir({ prefix: "volar-local-image-" });
  try {
    const image = await handImage([[
      { name: "bin/", type: "directory" },
      { name: "bin/app", data: new TextEncoder().encode("#!/bin/sh\n"), mode: 0o755 },
    ]], { Cmd: ["/bin/app"] });
    await writeLayout(`${dir}/layout`, [{ tag: "1.0", image }]);
    await new Deno.Command("skopeo", {
      args: ["copy", "--quiet", `oci:${dir}/layout:1.0`, `docker-archive:${dir}/app.tar`],
      stdout: "null",
      stderr: "null",
    }).output();

    // A relative path is resolved against volar's working directory: the daemon reads it.
    const relative = `oci:${relativePath(Deno.cwd(), `${dir}/layout`)}:1.0`;
    const sources: [string, string, string][] = [
      ["from-layout", relative, `oci:${dir}/layout:1.0`],
      ["from-archive", `docker-archive:${dir}/app.tar`, `docker-archive:${dir}/app.tar`],
    ];
    for (const [name, given, sent] of sources) {
      // --no-wait: the fake guest runs no workload, so the VM would never become running.
      const r = await volar([...s, "vms", "create", name, "--image", given, "--no-wait", "--json"]);
      equal(r.code, 0, `${given}: ${r.stderr}`);
      const vm = VmRecord.parse(JSON.parse(r.stdout));
      equal(vm.image, sent);
      match(vm.image_digest ?? "", /^sha256:[0-9a-f]{64}$/);
      if (given.startsWith("oci:")) equal(vm.image_digest, image.digest);
    }

    const bad: [string, RegExp][] = [
      ["docker-archive:", /--image "docker-archive:".*archive path is missing/],
      ["oci:/srv/app:-x", /--image "oci:\/srv\/app:-x".*tag "-x" after the layout path/],
      ["Not A Ref", /--image "Not A Ref".*white space.*expected \[registry\[:port\]\/\]name/],
    ];
    for (const [ref, message] of bad) {
      const r = await volar([...s, "vms", "create", "bad", "--image", ref]);
      equal(r.code, 2, `${ref}: ${r.stderr}`);
      match(r.stderr, message);
    }
    const missing = await volar([...s, "images", "pull", `docker-archive:${dir}/none.tar`]);
    equal(missing.code, 1, "a missing archive is the daemon's refusal");
    match(missing.stderr, /none\.tar/);
  } finally {
    await daemon.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
