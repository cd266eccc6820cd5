/**
 * Volant's own kernel: a failing build reports its log's end and cleans up (a fake source
 * tree, fast); the real build (minutes the first time, then cached in `.cache/guest`) gives a
 * bzImage and a PVH vmlinux that boot a guest to a kestrel stand-in under QEMU microvm (TCG),
 * with no modules, and switching the guest between kernels rebuilds only the kernel files.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { readCpio } from "./cpio.ts";
import { buildGuest } from "./guest.ts";
import { STAGE0_ERROR_MARKER } from "./initramfs.ts";
import { REQUIRED_OPTIONS } from "./volant_config.ts";
import { buildVolantKernel, VOLANT_KERNEL_SOURCE, volantKernelRoot } from "./volant_kernel.ts";
import { findBzImagePayload, inspectVmlinux } from "./vmlinux.ts";
import {
  bootQemu,
  bootSkipReason,
  CACHED_KERNEL,
  hasCommand,
  KERNEL_CACHE,
  KESTREL_STAND_IN,
  lineAfter,
} from "./testing.ts";

function buildSkipReason(): string | undefined {
  try {
    Deno.statSync(VOLANT_KERNEL_SOURCE);
  } catch {
    return `${VOLANT_KERNEL_SOURCE} is absent (apt-get install linux-source-6.1)`;
  }
  for (const tool of ["make", "gcc", "flex", "bison", "bc"]) {
    if (!hasCommand(tool)) return `${tool} is not installed`;
  }
  return undefined;
}
const NO_BUILD = buildSkipReason();
const NO_BOOT = NO_BUILD ?? bootSkipReason();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-kernel-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "buildVolantKernel() reports a failed make with the end of its log and removes the tree" +
    (hasCommand("make") ? "" : " (skipped: make is not installed)"),
  ignore: !hasCommand("make"),
  fn: () =>
    withDir(async (dir) => {
      // A fake source: merge_config.sh concatenates its inputs, make prints steps and fails.
      const top = `${dir}/src/linux-source-fake`;
      await Deno.mkdir(`${top}/scripts/kconfig`, { recursive: true });
      await Deno.writeTextFile(
        `${top}/scripts/kconfig/merge_config.sh`,
        '#!/bin/sh\nshift\nfor f; do [ -f "$f" ] && cat "$f"; done > .config\n',
      );
      await Deno.chmod(`${top}/scripts/kconfig/merge_config.sh`, 0o755);
      await Deno.writeTextFile(
        `${top}/Makefile`,
        "bzImage:\n\t@echo '  CC      init/main.o'\n\t@echo '  CC      kernel/fork.o'\n" +
          "\t@sleep 1.5\n\t@echo 'kernel/fork.c:1: error: boom'\n\t@false\n",
      );
      const fragment = REQUIRED_OPTIONS.map((o) =>
        o.value === "n" ? `# ${o.name} is not set` : `${o.name}=${o.value}`
      ).join("\n") + "\n";
      await Deno.writeTextFile(`${dir}/f.config`, fragment);
      const source = `${dir}/linux-source-fake.tar.xz`;
      const tar = await new Deno.Command("tar", {
        args: ["-cJf", source, "-C", `${dir}/src`, "linux-source-fake"],
      }).output();
      ok(tar.success);
      const lines: string[] = [];
      await rejects(
        buildVolantKernel({
          cacheDir: `${dir}/cache`,
          source,
          fragment: `${dir}/f.config`,
          progressSeconds: 0.5,
          log: (l) =>
            lines.push(l),
        }),
        (err: Error) => {
          match(err.message, /make -j\d+ bzImage failed \(exit 2\)/);
          match(err.message, /kernel\/fork\.c:1: error: boom/);
          match(err.message, /the full log is .*build-[0-9a-f]{16}\.log/);
          return true;
        },
      );
      match(lines[0]!, /the first build takes minutes/);
      ok(lines.some((l) => /\d+s: 2 steps, now CC kernel\/fork\.o/.test(l)), lines.join("\n"));
      const left = [...Deno.readDirSync(volantKernelRoot(`${dir}/cache`))].map((e) => e.name);
      ok(left.every((n) => !n.startsWith("build-") || n.endsWith(".log")), left.join(" "));
    }),
});

Deno.test({
  name: "the Volant kernel builds (cached), then boots a guest through PVH and as a bzImage" +
    (NO_BOOT === undefined ? "" : ` (skipped: ${NO_BOOT})`),
  ignore: NO_BOOT !== undefined,
  fn: async (t) => {
    const lines: string[] = [];
    const { kernel, built } = await buildVolantKernel({
      cacheDir: KERNEL_CACHE,
      log: (l) => {
        lines.push(l);
        console.error(`volant kernel: ${l}`);
      },
    });
    const bzImage = await Deno.readFile(kernel.bzImage);
    const vmlinux = await Deno.readFile(kernel.vmlinux);
    console.error(
      `volant kernel ${kernel.release}: ${
        built ? `built in ${kernel.buildSeconds} s` : "cached"
      }, ` +
        `bzImage ${bzImage.length} B, vmlinux ${vmlinux.length} B`,
    );

    await t.step("the outputs: an LZ4 bzImage and an ELF vmlinux with a PVH entry", async () => {
      match(kernel.release, /^6\.1\.\d+-volant$/);
      equal(findBzImagePayload(bzImage).compression, "lz4");
      ok(inspectVmlinux(vmlinux).pvhEntry > 0);
      ok(bzImage.length < 8 * 1048576, `bzImage is ${bzImage.length} bytes`);
      const config = await Deno.readTextFile(kernel.config);
      ok(!/=m$/m.test(config), "no modules");
      const again = await buildVolantKernel({ cacheDir: KERNEL_CACHE });
      equal(again.built, false);
      deepEqual(again.kernel, kernel);
    });

    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/volant.js`, KESTREL_STAND_IN);
      const guest = `${dir}/guest`;
      const manifest = await buildGuest({
        dir: guest,
        bundle: `${dir}/volant.js`,
        kernel: "volant",
        kernelDir: KERNEL_CACHE,
      });
      equal(manifest.kernel.flavor, "volant");
      equal(manifest.kernel.abi, kernel.release);
      equal(manifest.files["bzImage-volant"].sha256, kernel.bzImageSha256);
      equal(manifest.files["vmlinux-generic"].sha256, kernel.vmlinuxSha256);
      deepEqual(manifest.inputs.modules, []);
      const members = readCpio(await Deno.readFile(`${guest}/initramfs.cpio`));
      ok(!members.some((m) => m.path.endsWith(".ko")), "stage 0 carries no module");

      const boot = (file: string, cmdline?: string) =>
        bootQemu({
          kernel: `${guest}/${file}`,
          initramfs: `${guest}/initramfs.cpio`,
          disk: `${guest}/runtime.erofs`,
          log: `${dir}/${file}-${crypto.randomUUID().slice(0, 4)}.log`,
          timeoutMs: 120_000,
          cmdline,
        });

      await t.step("vmlinux-generic (PVH): the kernel, stage 0 and kestrel run", async () => {
        const r = await boot("vmlinux-generic", "loglevel=7");
        equal(r.timedOut, false, r.console);
        equal(r.code, 0, r.console);
        match(r.console, new RegExp(`Linux version ${kernel.release.replaceAll(".", "\\.")} `));
        match(r.console, /Run \/init as init process/);
        ok(!r.console.includes(STAGE0_ERROR_MARKER), r.console);
        const probe = JSON.parse(lineAfter(r.console, "KESTREL_PROBE") ?? "null");
        equal(probe?.pid, 1, r.console);
        equal(probe.release, kernel.release);
        equal(probe.modules, null, "no module support: no /proc/modules");
        const mounts = new Map<string, string>(
          (probe.mounts as string[][]).map((m) => [m[1]!, m[2]!]),
        );
        equal(mounts.get("/"), "erofs");
        equal(mounts.get("/tmp"), "tmpfs");
        equal(mounts.get("/dev"), "devtmpfs");
        ok(probe.input.some((n: string) => n.startsWith("event")), "the ACPI power button");
        ok(r.console.includes("reboot: Power down"), "powered off through ACPI");
        const ready = JSON.parse(lineAfter(r.console, "KESTREL_READY")!);
        const run = r.console.match(/\[\s*([0-9.]+)\] Run \/init as init process/);
        console.error(
          `volant vmlinux: Run /init at ${run?.[1]} s (guest clock), ready at guest uptime ` +
            `${ready.uptime_ms} ms, QEMU exited after ${Math.round(r.wallMs)} ms`,
        );
      });

      await t.step("bzImage-volant boots the same way", async () => {
        const r = await boot("bzImage-volant");
        equal(r.timedOut, false, r.console);
        equal(r.code, 0, r.console);
        const ready = JSON.parse(lineAfter(r.console, "KESTREL_READY") ?? "null");
        equal(ready?.name, "t", r.console);
      });

      await t.step({
        name: "switching the guest to Debian's kernel and back rebuilds only the kernel files" +
          (CACHED_KERNEL ? "" : " (skipped: no Debian kernel in the cache)"),
        ignore: !CACHED_KERNEL,
        fn: async () => {
          const debian = await buildGuest({
            dir: guest,
            bundle: `${dir}/volant.js`,
            kernel: "debian",
            kernelDir: KERNEL_CACHE,
          });
          equal(debian.kernel.flavor, "debian");
          deepEqual(debian.build.rebuilt, ["bzImage-volant", "vmlinux-generic", "initramfs.cpio"]);
          ok(debian.inputs.modules.length > 0);
          const back = await buildGuest({
            dir: guest,
            bundle: `${dir}/volant.js`,
            kernelDir: KERNEL_CACHE,
          });
          equal(back.kernel.flavor, "volant");
          deepEqual(back.build.rebuilt, ["bzImage-volant", "vmlinux-generic", "initramfs.cpio"]);
          const digests = (m: typeof manifest) =>
            Object.entries(m.files).map(([f, r]) => [f, r.sha256, r.key]);
          deepEqual(digests(back), digests(manifest));
        },
      });
    });
  },
});

if (NO_BOOT) console.error(`volant_kernel_test: boot skipped: ${NO_BOOT}`);
