import { deepEqual, equal, match, ok } from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { GUEST_FIX } from "../../daemon/guest.ts";
import { parseConfig } from "../../daemon/config.ts";
import { VerdictCache, verdictInputs } from "../../daemon/boot_probe/mod.ts";
import { detectKvm } from "../../hypervisor/kvm.ts";
import { AUTO_ORDER } from "../../hypervisor/probe_all.ts";
import { findExecutable } from "../../hypervisor/process/find_executable.ts";
import { probeQemu } from "../../hypervisor/qemu/probe.ts";
import { createNetns, deleteNetns } from "../../hypervisor/testing/netns.ts";
import { writeFakeCh } from "../../hypervisor/testing/fake_ch_vmm.ts";
import { startDaemon, volar } from "../testing.ts";
import { DoctorReport } from "./doctor.ts";
import { splitReason } from "./_doctor_checks.ts";
import { parseDfOutput, SYSTEM_DIRS, toolChecks, TOOLS, toolStates } from "./_doctor_host.ts";

const kvm = await detectKvm();
const qemu = await probeQemu("qemu-system-x86_64");
const PATH = Deno.env.get("PATH") ?? "";
const toolsFound = (await Promise.all(
  TOOLS.map((t) => findExecutable(t.name, `${PATH}:${SYSTEM_DIRS}`)),
)).every((p) => p !== null);
/** Whether this host has all that a VM needs besides the temp guest files the tests write. */
const hostReady = qemu.available && toolsFound;
const isRoot = Deno.uid() === 0;
if (!hostReady) console.log("doctor tests expect exit 1 here: QEMU or a Debian tool is missing");

/** A temp state/runtime/guest layout and a config naming it; `extra` is appended YAML. */
async function layout(extra = "", kernel = "bzImage-volant") {
  const dir = await Deno.makeTempDir({ prefix: "volar-doctor-" });
  await Deno.mkdir(`${dir}/guest`);
  await Deno.writeFile(`${dir}/guest/${kernel}`, new Uint8Array(2048));
  await Deno.writeFile(`${dir}/guest/initramfs.cpio`, new Uint8Array(3 * 1024 * 1024));
  await Deno.writeFile(`${dir}/guest/runtime.erofs`, new Uint8Array(100));
  const config = `${dir}/config.yaml`;
  const ns = `volant-t-absent-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(
    config,
    [
      `state_dir: ${dir}/state`,
      `runtime_dir: ${dir}/run`,
      `log_dir: ${dir}/log`,
      `guest:`,
      `  dir: ${dir}/guest`,
      `  default_kernel: ${kernel}`,
      `network:`,
      `  namespace: ${ns}`,
      extra,
    ].join("\n"),
  );
  return { dir, config, ns, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

/** The checklist line of `title` (status, title, detail). */
function line(stdout: string, title: string): string {
  const found = stdout.split("\n").find((l) => l.slice(6).startsWith(`${title}  `));
  ok(found !== undefined, `no checklist line for ${title} in:\n${stdout}`);
  return found;
}

Deno.test("volar doctor prints a checklist of this host against a temp config", async () => {
  const t = await layout();
  try {
    const r = await volar(["doctor", "--config", t.config], { env: { PATH } });
    equal(r.code, hostReady ? 0 : 1, r.stderr);
    match(line(r.stdout, "config"), new RegExp(`^ok +config +${t.config}$`));
    match(
      line(r.stdout, "guest kernel"),
      new RegExp(
        `^ok +guest kernel +bzImage-volant \\(bzImage\\) ${t.dir}/guest/bzImage-volant, 2\\.0 KiB$`,
      ),
    );
    match(line(r.stdout, "guest initramfs"), /^ok .*initramfs\.cpio, 3\.0 MiB$/);
    match(line(r.stdout, "guest runtime disk"), /^ok .*runtime\.erofs, 100 B$/);
    // KVM: what this host really has; without it a warning (QEMU emulates), with the fix.
    match(
      line(r.stdout, "KVM"),
      kvm.available ? /^ok +KVM +\/dev\/kvm usable/ : /^warn +KVM +\/dev\/kvm /,
    );
    if (!kvm.available) {
      match(r.stdout, /^ +fix: load the module \(modprobe kvm_intel or kvm_amd\)/m);
    }
    // Every hypervisor has a line; a missing KVM-only VMM is skipped with its fix.
    for (const name of AUTO_ORDER) line(r.stdout, name);
    if (qemu.available) {
      match(line(r.stdout, "qemu"), new RegExp(`^ok +qemu +${qemu.version} at ${qemu.binary}, `));
      match(
        line(r.stdout, "hypervisor"),
        new RegExp(`^ok +hypervisor +hypervisor\\.name: auto selects `),
      );
    } else {
      match(line(r.stdout, "hypervisor"), /^FAIL +hypervisor /);
    }
    // The namespace the config names does not exist: volantd would create it; a warning.
    match(
      line(r.stdout, "bridge vbr0"),
      new RegExp(`^warn +bridge vbr0 +network namespace ${t.ns} does not exist$`),
    );
    match(
      r.stdout,
      /^ +fix: volantd creates it when it starts \(as root\); or prepare the host now with `sudo volar setup`$/m,
    );
    // state_dir does not exist yet: measured at its nearest parent.
    match(
      line(r.stdout, "disk space"),
      new RegExp(
        `^(ok|warn|FAIL) +disk space +[\\d.]+ [KMG]?i?B free for ${t.dir}/state \\(not created yet; measured ${t.dir}\\) on /`,
      ),
    );
    for (const tool of TOOLS) {
      match(line(r.stdout, tool.name), toolsFound ? /^ok +\S+ +\// : /^(ok|FAIL) /);
    }
    // No volantd on the config's socket: a warning, not a failure.
    match(
      line(r.stdout, "volantd"),
      new RegExp(
        `^warn +volantd +Cannot reach volantd at unix socket ${t.dir}/run/volantd\\.sock: the socket does not exist$`,
      ),
    );
    match(
      r.stdout,
      hostReady
        ? /\n\nReady: this host can boot a microVM \(\d+ warnings?\)\.\n$/
        : /\n\nNot ready: /,
    );
    ok(
      !(await Deno.stat(`${t.dir}/state`).then(() => true, () => false)),
      "doctor creates nothing",
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor fails on a missing guest file and names the fix", async () => {
  const t = await layout();
  try {
    await Deno.remove(`${t.dir}/guest/initramfs.cpio`);
    const r = await volar(["doctor", "--config", t.config], { env: { PATH } });
    equal(r.code, 1);
    match(
      line(r.stdout, "guest initramfs"),
      new RegExp(`^FAIL +guest initramfs +${t.dir}/guest/initramfs\\.cpio is missing$`),
    );
    ok(r.stdout.includes(`fix: ${GUEST_FIX}`));
    match(r.stdout, /\n\nNot ready: fix guest initramfs(, [^\n]+)? before booting a microVM/);
    match(
      r.stderr,
      /^volar: This host cannot boot a microVM yet: guest initramfs(, .+)? failed \(the fixes are in the checklist above\)\n$/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor --json prints the report: facts and the checklist", async () => {
  const t = await layout();
  try {
    const r = await volar(["--json", "doctor"], { env: { PATH, VOLANT_CONFIG: t.config } });
    equal(r.code, hostReady ? 0 : 1, r.stderr);
    const report = DoctorReport.parse(JSON.parse(r.stdout));
    equal(report.ready, hostReady);
    deepEqual(report.config, { path: t.config, found: true, error: null });
    equal(report.kvm.available, kvm.available);
    deepEqual(report.hypervisors.map((h) => h.name), [...AUTO_ORDER]);
    if (!kvm.available) equal(report.selected, qemu.available ? "qemu" : null);
    equal(report.auto, report.selected, "hypervisor.name is auto");
    deepEqual(report.guest.files.map((f) => [f.role, f.exists, f.size_bytes]), [
      ["kernel", true, 2048],
      ["initramfs", true, 3 * 1024 * 1024],
      ["runtime_disk", true, 100],
    ]);
    deepEqual(
      [report.bridge.name, report.bridge.namespace, report.bridge.exists],
      ["vbr0", t.ns, null],
    );
    equal(report.disk.dir, `${t.dir}/state`);
    ok(report.disk.free_bytes !== null && report.disk.free_bytes > 0);
    deepEqual(report.tools.map((x) => x.name), TOOLS.map((x) => x.name));
    deepEqual(
      [report.daemon.target, report.daemon.reachable],
      [`${t.dir}/run/volantd.sock`, false],
    );
    deepEqual(report.checks.map((c) => c.id), [
      "config",
      "kvm",
      "hypervisor.cloud-hypervisor",
      "hypervisor.firecracker",
      "hypervisor.qemu",
      "hypervisor",
      "accel",
      "guest.kernel",
      "guest.initramfs",
      "guest.runtime_disk",
      "bridge",
      "disk",
      ...TOOLS.map((x) => `tool.${x.name}`),
      "jail",
      "daemon",
    ]);
    for (const c of report.checks) {
      if (c.status === "warn" || c.status === "fail") {
        ok(
          c.fix !== null || c.id.startsWith("hypervisor.") || c.id === "disk" || c.id === "kvm",
          `${c.id} has a fix`,
        );
      }
    }
    if (!hostReady) equal(JSON.parse(r.stderr).code, "invalid_state");
    else equal(r.stderr, "");
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor shows a configured Cloud Hypervisor binary and why auto passes it over", async () => {
  const t = await layout("", "vmlinux-generic");
  try {
    const fake = await writeFakeCh(t.dir, { document: "", version: "53.0.0" });
    await Deno.writeTextFile(t.config, `\nhypervisor:\n  cloud_hypervisor_binary: ${fake.path}\n`, {
      append: true,
    });
    const r = await volar(["--json", "doctor", "--config", t.config], { env: { PATH } });
    const report = DoctorReport.parse(JSON.parse(r.stdout));
    const ch = report.hypervisors[0]!;
    deepEqual([ch.name, ch.binary, ch.version, ch.available], [
      "cloud-hypervisor",
      fake.path,
      "53.0.0",
      kvm.available,
    ]);
    if (kvm.available) {
      equal(report.selected, "cloud-hypervisor", "a vmlinux guest, KVM and v53: auto takes it");
    } else {
      match(ch.reason ?? "", /Cloud Hypervisor needs hardware KVM, which is unusable here/);
      equal(report.selected, qemu.available ? "qemu" : null);
      const text = await volar(["doctor", "--config", t.config], { env: { PATH } });
      match(
        line(text.stdout, "cloud-hypervisor"),
        /^skip +cloud-hypervisor +53\.0\.0: Cloud Hypervisor needs hardware KVM/,
      );
      match(text.stdout, /^ +fix: for software emulation use hypervisor\.name: qemu$/m);
      if (qemu.available) {
        match(
          line(text.stdout, "hypervisor"),
          /selects qemu .* \(passed over cloud-hypervisor and firecracker: see above\)$/,
        );
      }
    }
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor fails when the configured hypervisor cannot be used", async () => {
  const t = await layout(
    "hypervisor:\n  name: firecracker\n  firecracker_binary: /nonexistent/firecracker",
  );
  try {
    const r = await volar(["doctor", "--config", t.config], { env: { PATH } });
    equal(r.code, 1);
    match(
      line(r.stdout, "firecracker"),
      /^FAIL +firecracker +Firecracker binary \/nonexistent\/firecracker not found$/,
    );
    match(
      line(r.stdout, "hypervisor"),
      /^FAIL +hypervisor +hypervisor\.name: firecracker selects nothing: firecracker is not usable$/,
    );
    if (qemu.available) match(r.stdout, /fix: set hypervisor\.name: auto \(it would select qemu\)/);
    match(r.stderr, /cannot boot a microVM yet: .*firecracker, hypervisor/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor reports a config it cannot use, then checks with the defaults", async () => {
  const t = await layout("bogus_key: 1");
  try {
    const r = await volar(["doctor", "--config", t.config], { env: { PATH } });
    equal(r.code, 1);
    match(
      line(r.stdout, "config"),
      /^FAIL +config +Invalid config .*bogus_key.*\(the checks below use the built-in defaults\)$/,
    );
    ok(r.stdout.includes(`fix: fix ${t.config} (volar setup writes a valid one)`));
    const missing = await volar(["doctor", "--config", `${t.dir}/absent.yaml`], { env: { PATH } });
    equal(missing.code, 1);
    match(
      line(missing.stdout, "config"),
      /^FAIL +config +Config file .*absent\.yaml does not exist/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("volar doctor sees a running volantd through --socket", async () => {
  const daemon = await startDaemon();
  const t = await layout();
  try {
    const r = await volar(["--socket", daemon.socket, "doctor", "--config", t.config], {
      env: { PATH },
    });
    match(
      line(r.stdout, "volantd"),
      new RegExp(
        `^ok +volantd +\\S+ answers at ${daemon.socket}: qemu( \\S+)?, TCG \\(no KVM\\), 0 VMs$`,
      ),
    );
  } finally {
    await t.cleanup();
    await daemon.stop();
  }
});

Deno.test({
  name: "volar doctor looks for the bridge inside the configured namespace" +
    (isRoot ? "" : " (skipped: needs root)"),
  ignore: !isRoot,
  fn: async () => {
    const ns = await createNetns();
    const t = await layout();
    const ip = (...args: string[]) =>
      new Deno.Command("ip", { args: ["-n", ns, ...args] }).output();
    try {
      const config = (await Deno.readTextFile(t.config)).replace(
        /namespace: \S+/,
        `namespace: ${ns}`,
      );
      await Deno.writeTextFile(t.config, config + "\n  bridge: vbrt0\n");
      const run = async () =>
        line(
          (await volar(["doctor", "--config", t.config], { env: { PATH } })).stdout,
          "bridge vbrt0",
        );
      match(await run(), new RegExp(`^warn +bridge vbrt0 +not in network namespace ${ns}$`));
      ok((await ip("link", "add", "vbrt0", "type", "bridge")).success);
      match(
        await run(),
        new RegExp(
          `^ok +bridge vbrt0 +in network namespace ${ns}, down \\(volantd sets it up when it starts\\)$`,
        ),
      );
      ok((await ip("link", "set", "vbrt0", "up")).success);
      match(await run(), new RegExp(`^ok +bridge vbrt0 +in network namespace ${ns}, up$`));
      ok((await ip("link", "del", "vbrt0")).success);
      ok((await ip("link", "add", "vbrt0", "type", "veth", "peer", "name", "vbrt1")).success);
      match(
        await run(),
        new RegExp(
          `^FAIL +bridge vbrt0 +vbrt0 in network namespace ${ns} is a veth, not a bridge$`,
        ),
      );
    } finally {
      await t.cleanup();
      await deleteNetns(ns);
    }
  },
});

Deno.test("toolStates() and toolChecks() give each missing tool its apt command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-doctor-tools-" });
  try {
    await Deno.writeTextFile(`${dir}/ip`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/nft`, "not executable\n", { mode: 0o644 });
    const states = await toolStates(dir);
    deepEqual(
      states.map((s) => [s.name, s.path]),
      TOOLS.map((x) => [x.name, x.name === "ip" ? `${dir}/ip` : null]),
    );
    const checks = toolChecks(states);
    deepEqual(checks.map((c) => c.status), TOOLS.map((x) => x.name === "ip" ? "ok" : "fail"));
    const nft = checks.find((c) => c.id === "tool.nft")!;
    equal(nft.detail, "not found (needed for NAT and published ports)");
    equal(nft.fix, "apt-get install --no-install-recommends nftables");
    equal(
      checks.find((c) => c.id === "tool.mkfs.erofs")?.fix,
      "apt-get install --no-install-recommends erofs-utils",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseDfOutput() reads free space and the mount point, spaces included", async () => {
  const sample = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n" +
    "/dev/vda1        102626232  20116536  77247564      21% /var/lib/my volant\n";
  deepEqual(parseDfOutput(sample), { free_bytes: 77247564 * 1024, mount: "/var/lib/my volant" });
  equal(parseDfOutput("df: /nope: No such file or directory\n"), null);
  // The real df agrees with itself on the root filesystem.
  const out = await new Deno.Command("df", { args: ["-Pk", "/"], stdout: "piped" }).output();
  const real = parseDfOutput(new TextDecoder().decode(out.stdout));
  ok(real !== null && real.free_bytes > 0);
  equal(real.mount, "/");
});

Deno.test("splitReason() separates what was found from the fix", () => {
  deepEqual(splitReason("Firecracker binary fc not found on PATH (install it (v1.16), or set x)"), {
    detail: "Firecracker binary fc not found on PATH",
    fix: "install it (v1.16), or set x",
  });
  deepEqual(splitReason("Cloud Hypervisor 52.0.0 is too old: needs 53.0.0 (why); install it"), {
    detail: "Cloud Hypervisor 52.0.0 is too old: needs 53.0.0 (why)",
    fix: "install it",
  });
  deepEqual(splitReason("QEMU cannot boot a vmlinux"), {
    detail: "QEMU cannot boot a vmlinux",
    fix: null,
  });
});

Deno.test({
  name: "volar doctor shows a cached probe verdict: /dev/kvm answers but the guest does not boot" +
    (kvm.available && qemu.available
      ? ""
      : " (skipped: needs an openable /dev/kvm and QEMU, so the config selects QEMU with KVM)"),
  ignore: !kvm.available || !qemu.available,
  fn: async () => {
    const t = await layout();
    try {
      const config = parseConfig(
        parseYaml(await Deno.readTextFile(t.config)) as Record<string, unknown>,
        () => undefined,
      );
      const inputs = await verdictInputs(
        "qemu",
        qemu.binary!,
        "bzImage-volant",
        `${t.dir}/guest/bzImage-volant`,
      );
      await new VerdictCache(config.hypervisor.boot_verdicts).record(inputs, {
        ok: false,
        ms: 15_000,
        reason: "the guest kernel did not reach its init within 15000 ms",
        checkedAt: new Date(),
      });
      const r = await volar(["doctor", "--config", t.config], { env: { PATH } });
      match(
        line(r.stdout, "KVM"),
        /^warn +KVM +\/dev\/kvm answers.*but the guest kernel does not boot/,
      );
      match(
        line(r.stdout, "accelerator"),
        /^warn +accelerator +\/dev\/kvm is present but the guest kernel does not boot under it.*: using TCG \(cached probe verdict: the guest kernel did not reach its init within 15000 ms\)$/,
      );
      match(line(r.stdout, "qemu"), /TCG \(software emulation\)/);
      match(line(r.stdout, "hypervisor"), /selects qemu \S+ with TCG/);
      // A warning, not a failure: VMs still boot, under TCG.
      equal(r.code, hostReady ? 0 : 1, r.stderr);
    } finally {
      await t.cleanup();
    }
  },
});
