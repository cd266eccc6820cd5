import { deepEqual, equal, notDeepEqual, ok } from "node:assert/strict";
import { sha256Bytes } from "./_hash.ts";
import { readCpio } from "./cpio.ts";
import {
  buildInitramfs,
  initramfsEntries,
  type InitramfsModule,
  initScript,
  STAGE0_APPLETS,
} from "./initramfs.ts";
import { hasCommand } from "./testing.ts";

const enc = new TextEncoder();

function modules(): InitramfsModule[] {
  return [
    { name: "virtio_ring", path: "kernel/drivers/virtio/virtio_ring.ko", required: true },
    { name: "virtio", path: "kernel/drivers/virtio/virtio.ko", required: true },
    { name: "erofs", path: "kernel/fs/erofs/erofs.ko", required: true },
    { name: "evdev", path: "kernel/drivers/input/evdev.ko", required: false },
  ].map((m) => ({ ...m, data: enc.encode(`fake ${m.name} module`) }));
}

Deno.test("initScript() runs the stage-0 steps in the contract's order (v6: the secret leaves the workload's root, the workload may start before kestrel)", () => {
  const lines = initScript({ modules: modules() }).split("\n");
  equal(lines[0], "#!/.volant/bin/sh");
  const steps = [
    /^mount -t proc proc \/proc /,
    /^read -r VOLANT_T_KERNEL _ <\/proc\/uptime$/,
    /^mount -t sysfs sysfs \/sys /,
    /^mount -t devtmpfs devtmpfs \/dev /,
    /^mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts \/dev\/pts /,
    /^mount -t tmpfs -o mode=1777 tmpfs \/dev\/shm /,
    /^insmod \/\.volant\/modules\/virtio_ring\.ko /,
    /^insmod \/\.volant\/modules\/virtio\.ko /,
    /^insmod \/\.volant\/modules\/erofs\.ko /,
    /^insmod \/\.volant\/modules\/evdev\.ko /,
    /^rm -rf \/\.volant\/modules$/,
    /^if \[ -f \/volant\/boot\.env \]; then \. \/volant\/boot\.env /,
    /^network\(\) \{$/,
    /^if \[ "\$VOLANT_INIT" != kestrel \]; then$/,
    /^\tnetwork$/,
    /^\texec "\$@"$/,
    /^until \[ -b \/dev\/vda \]/,
    /^mount -t erofs -o ro \/dev\/vda \/newroot /,
    /^mount -t tmpfs -o mode=1777 tmpfs \/newroot\/tmp /,
    /^mount -t tmpfs -o mode=0755 tmpfs \/newroot\/run /,
    /^if \[ -f \/volant\/boot\.json \]; then mv \/volant\/boot\.json \/newroot\/run\/volant\/boot\.json /,
    /^rm -f \/volant\/boot\.env$/,
    /^mount --bind \/ \/newroot\/run\/volant\/root /,
    /^if \[ -n "\$VOLANT_EARLY_EXEC" \] && \[ -x \/\.volant\/bin\/detach \]; then$/,
    /^\tnetwork$/,
    /^\tmount -t proc -o nosuid,nodev,noexec proc "\$r\/proc" /,
    /^\tmount -t sysfs -o nosuid,nodev,noexec sysfs "\$r\/sys" /,
    /^\tmount --rbind \/dev "\$r\/dev" /,
    /^\tmkfifo -m 0600 \/newroot\/run\/volant\/workload\.out \/newroot\/run\/volant\/workload\.err /,
    /^\texec 3<>\/newroot\/run\/volant\/workload\.out 4<>\/newroot\/run\/volant\/workload\.err$/,
    /^\teval "set -- \/\.volant\/bin\/detach \/\.volant\/bin\/env -i \$VOLANT_EARLY_ENV \/\.volant\/bin\/nsenter -F /,
    /^\t"\$@" <\/dev\/null >&3 2>&4 3>&- 4>&- &$/,
    /^\techo \$! >\/newroot\/run\/volant\/workload\.pid$/,
    /^\tread -r VOLANT_T_WORKLOAD _ <\/proc\/uptime$/,
    /^read -r VOLANT_T_STAGE0 _ <\/proc\/uptime$/,
    /^mount --move \/proc \/newroot\/proc /,
    /^mount --move \/sys \/newroot\/sys /,
    /^mount --move \/dev \/newroot\/dev /,
    /^cd \/newroot /,
    /^mount --move \. \/ /,
    /^export DENO_DIR=\/tmp\/deno HOME=\/tmp NO_COLOR=1 PATH=\/usr\/bin:\/bin VOLANT_T_KERNEL VOLANT_T_STAGE0 VOLANT_T_NETWORK VOLANT_T_WORKLOAD$/,
    /^exec chroot \. \/usr\/bin\/deno run -A --no-config --no-lock --quiet \/opt\/volant\/kestrel\.js kestrel$/,
  ];
  // Each step after the one before (a pattern may match earlier lines too, e.g. `\tnetwork`).
  const at: number[] = [];
  for (const step of steps) {
    const from = (at.at(-1) ?? -1) + 1;
    const i = lines.slice(from).findIndex((l) => step.test(l));
    ok(i >= 0, `no line matches ${step} after line ${from}`);
    at.push(from + i);
  }
  deepEqual([...at].sort((a, b) => a - b), at, "steps out of order");
  equal(at.at(-1), lines.filter((l) => l !== "").length - 1, "exec is the last line");
});

Deno.test("initScript() makes required modules fatal and optional ones quiet", () => {
  const text = initScript({ modules: modules() });
  ok(text.includes(`insmod /.volant/modules/erofs.ko || fail "insmod erofs"`));
  ok(text.includes("insmod /.volant/modules/evdev.ko 2>/dev/null\n"));
  ok(!text.includes(`fail "insmod evdev"`));
  // Every step before the exec that can fail reports it.
  const fallible = text.split("\n").filter((l) => /^(mount|insmod) /.test(l));
  for (const line of fallible) {
    ok(line.includes("|| fail ") || line.endsWith("2>/dev/null"), line);
  }
  ok(/fail\(\) \{\n\techo "VOLANT_STAGE0_ERROR \$\*"\n.*\n\tpoweroff -f\n/.test(text));
  ok(text.includes(`after 5 s"`));
  ok(initScript({ modules: [], diskTimeoutSeconds: 2 }).includes("now + 200"));
});

Deno.test({
  name: "initScript() is valid busybox sh" +
    (hasCommand("busybox") ? "" : " (skipped: busybox is not installed)"),
  ignore: !hasCommand("busybox"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "volant-init-" });
    try {
      await Deno.writeTextFile(`${dir}/init`, initScript({ modules: modules() }));
      const out = await new Deno.Command("busybox", {
        args: ["sh", "-n", `${dir}/init`],
        stderr: "piped",
      }).output();
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      // And a syntax error is caught, so the check above means something.
      await Deno.writeTextFile(`${dir}/bad`, "if true; then\n");
      const bad = await new Deno.Command("busybox", { args: ["sh", "-n", `${dir}/bad`] }).output();
      ok(bad.code !== 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("initramfsEntries() holds busybox, applets, console, modules and mount points", () => {
  const busybox = enc.encode("busybox bytes");
  const members = readCpio(buildInitramfs({ busybox, modules: modules() }));
  const by = new Map(members.map((m) => [m.path, m]));
  const console_ = by.get("dev/console");
  equal(console_?.type, "chardev");
  equal(console_?.rdevMajor, 5);
  equal(console_?.rdevMinor, 1);
  equal(by.get("init")?.mode, 0o755);
  deepEqual(by.get(".volant/bin/busybox")?.data, busybox);
  for (const applet of STAGE0_APPLETS) {
    const link = by.get(`.volant/bin/${applet}`);
    equal(link?.type, "symlink", applet);
    equal(new TextDecoder().decode(link!.data), "busybox");
  }
  for (const dir of ["proc", "sys", "dev", "newroot"]) equal(by.get(dir)?.type, "dir", dir);
  for (const m of modules()) deepEqual(by.get(`.volant/modules/${m.name}.ko`)?.data, m.data);
  ok(members.every((m) => m.uid === 0 && m.gid === 0 && m.mtime === 0));
  // Every command the script runs is an applet linked in /bin (or a shell builtin).
  const script = new TextDecoder().decode(by.get("init")!.data);
  const builtins = new Set([
    "export",
    "echo",
    "if",
    "fi",
    "then",
    "read",
    "case",
    "esac",
    "until",
    "exit",
    "eval",
    "cd",
  ]);
  const commands = script.split("\n")
    .map((l) => l.trim().replace(/^(exec|if|then|\|\|)\s+/, ""))
    .filter((l) => /^[a-z_]+( |$)/.test(l))
    .map((l) => l.split(" ")[0]!)
    .filter((c) => !builtins.has(c) && !["fail", "network", "done", "mode"].includes(c));
  for (const c of new Set(commands)) {
    ok((STAGE0_APPLETS as readonly string[]).includes(c) || c === "busybox", `${c} not linked`);
  }
  ok(initramfsEntries({ busybox, modules: [] }).some((e) => e.path === "init"));
  // The detach helper is there only when built (without it stage 0 never starts a workload).
  equal(by.get(".volant/bin/detach"), undefined);
  const detach = enc.encode("detach bytes");
  const withDetach = readCpio(buildInitramfs({ busybox, modules: [], detach }));
  const entry = withDetach.find((m) => m.path === ".volant/bin/detach");
  deepEqual(entry?.data, detach);
  equal(entry?.mode, 0o755);
  ok(script.includes("[ -x /.volant/bin/detach ]"));
});

Deno.test("buildInitramfs() is deterministic: same inputs, same sha256", async () => {
  const busybox = enc.encode("busybox bytes");
  const a = buildInitramfs({ busybox, modules: modules() });
  const b = buildInitramfs({ busybox: busybox.slice(), modules: modules() });
  equal(
    await sha256Bytes(a as Uint8Array<ArrayBuffer>),
    await sha256Bytes(b as Uint8Array<ArrayBuffer>),
  );
  // Any input change shows: busybox bytes, the load order (it is in /init).
  notDeepEqual(buildInitramfs({ busybox: enc.encode("other busybox"), modules: modules() }), a);
  notDeepEqual(buildInitramfs({ busybox, modules: modules().reverse() }), a);
});
