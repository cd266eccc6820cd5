/**
 * Real boots of a freshly built guest dir with Debian's kernel (its modules loaded by stage 0)
 * under QEMU microvm (TCG), one VM at a time, each in its own network namespace: the bzImage and
 * the PVH vmlinux reach a kestrel stand-in (PID 1 under Deno on the runtime disk), and a broken
 * runtime disk makes stage 0 report and power off. Volant's own kernel: volant_kernel_test.ts.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { buildGuest } from "./guest.ts";
import { STAGE0_ERROR_MARKER } from "./initramfs.ts";
import { bootQemu, bootSkipReason, KERNEL_CACHE, KESTREL_STAND_IN, lineAfter } from "./testing.ts";

const SKIP = bootSkipReason();

Deno.test({
  name:
    "a guest with Debian's kernel boots to kestrel under QEMU microvm (bzImage, PVH vmlinux, broken disk)" +
    (SKIP === undefined ? "" : ` (skipped: ${SKIP})`),
  ignore: SKIP !== undefined,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "volant-boot-" });
    try {
      await Deno.writeTextFile(`${dir}/volant.js`, KESTREL_STAND_IN);
      const guest = `${dir}/guest`;
      const manifest = await buildGuest({
        dir: guest,
        bundle: `${dir}/volant.js`,
        kernel: "debian",
        kernelDir: KERNEL_CACHE,
      });
      const boot = (kernel: string, disk = `${guest}/runtime.erofs`) =>
        bootQemu({
          kernel: `${guest}/${kernel}`,
          initramfs: `${guest}/initramfs.cpio`,
          disk,
          log: `${dir}/${kernel}-${crypto.randomUUID().slice(0, 4)}.log`,
          timeoutMs: 90_000,
        });

      await t.step("bzImage-volant reaches KESTREL_READY and QEMU exits 0", async () => {
        const r = await boot("bzImage-volant");
        equal(r.timedOut, false, r.console);
        equal(r.code, 0, r.console);
        const ready = JSON.parse(lineAfter(r.console, "KESTREL_READY") ?? "null");
        equal(ready?.name, "t", r.console);
        ok(!r.console.includes(STAGE0_ERROR_MARKER), r.console);
        // What stage 0 handed over: PID 1, argv, environment, mounts, modules.
        const probe = JSON.parse(lineAfter(r.console, "KESTREL_PROBE")!);
        equal(probe.pid, 1);
        deepEqual(probe.args, ["kestrel"]);
        equal(probe.env.DENO_DIR, "/tmp/deno");
        equal(probe.env.HOME, "/tmp");
        equal(probe.env.NO_COLOR, "1");
        ok(probe.env.PATH.endsWith("/usr/bin:/bin"), probe.env.PATH);
        const mounts = new Map<string, { dev: string; type: string; opts: string }>(
          (probe.mounts as string[][]).map((
            m,
          ) => [m[1]!, { dev: m[0]!, type: m[2]!, opts: m[3]! }]),
        );
        equal(mounts.get("/")?.type, "erofs");
        equal(mounts.get("/")?.dev, "/dev/vda");
        ok(mounts.get("/")?.opts.split(",").includes("ro"));
        equal(mounts.get("/tmp")?.type, "tmpfs");
        equal(mounts.get("/run")?.type, "tmpfs");
        equal(mounts.get("/proc")?.type, "proc");
        equal(mounts.get("/sys")?.type, "sysfs");
        equal(mounts.get("/dev")?.type, "devtmpfs");
        equal(probe.tmpMode, 0o1777);
        equal(probe.runMode, 0o755);
        equal(probe.rootWritable, false);
        equal(probe.vda, true);
        for (const m of manifest.inputs.modules) ok(probe.modules.includes(m.name), m.name);
        ok(
          probe.input.some((n: string) => n.startsWith("event")),
          "ACPI button has an event device",
        );
        console.error(
          `bzImage: ready after ${Math.round(r.markerMs ?? -1)} ms wall ` +
            `(guest uptime ${ready.uptime_ms} ms), QEMU exited after ${Math.round(r.wallMs)} ms`,
        );
      });

      await t.step("vmlinux-generic boots through PVH the same way", async () => {
        const r = await boot("vmlinux-generic");
        equal(r.timedOut, false, r.console);
        equal(r.code, 0, r.console);
        const ready = JSON.parse(lineAfter(r.console, "KESTREL_READY") ?? "null");
        equal(ready?.kestrel_version, "test", r.console);
        console.error(
          `vmlinux: ready after ${Math.round(r.markerMs ?? -1)} ms wall ` +
            `(guest uptime ${ready.uptime_ms} ms), QEMU exited after ${Math.round(r.wallMs)} ms`,
        );
      });

      await t.step(
        "an empty runtime disk makes stage 0 print its error and power off",
        async () => {
          await Deno.writeFile(`${dir}/empty.img`, new Uint8Array());
          const r = await boot("bzImage-volant", `${dir}/empty.img`);
          equal(r.timedOut, false, r.console);
          equal(r.code, 0, r.console);
          const error = lineAfter(r.console, STAGE0_ERROR_MARKER);
          ok(error?.startsWith("mount -t erofs -o ro /dev/vda /newroot"), r.console);
          ok(!r.console.includes("KESTREL_READY"), r.console);
          ok(r.console.includes("reboot: Power down"), r.console);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (SKIP) console.error(`boot_test: skipped: ${SKIP}`);
