import { deepEqual, equal, match, ok } from "node:assert/strict";
import { isSupportedVersion, parseQemuVersion, probeQemu, QEMU_MIN_VERSION } from "./probe.ts";

Deno.test("parseQemuVersion() reads the first line of --version", () => {
  deepEqual(
    parseQemuVersion(
      "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022",
    ),
    {
      major: 7,
      minor: 2,
      micro: 22,
      text: "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
    },
  );
  equal(parseQemuVersion("QEMU emulator version 9.1 (v9.1.0)")?.micro, 0);
  equal(parseQemuVersion("cloud-hypervisor v40.0"), null);
});

Deno.test("isSupportedVersion() compares against QEMU_MIN_VERSION", () => {
  ok(isSupportedVersion(QEMU_MIN_VERSION));
  ok(isSupportedVersion({ major: 10, minor: 0, micro: 0 }));
  ok(isSupportedVersion({ major: 5, minor: 2, micro: 1 }));
  ok(!isSupportedVersion({ major: 5, minor: 1, micro: 99 }));
  ok(!isSupportedVersion({ major: 4, minor: 9, micro: 0 }));
});

/** A fake `qemu-system-x86_64` shell script printing `version` and `machines`. */
async function fakeQemu(dir: string, version: string, machines: string): Promise<string> {
  const path = `${dir}/qemu-system-x86_64`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\ncase "$1" in\n--version) echo "${version}";;\n-machine) printf '${machines}';;\n` +
      `*) exit 3;;\nesac\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("probeQemu() reports missing, too old, microvm-less and good binaries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-probe-" });
  try {
    const missing = await probeQemu("volant-no-such-qemu");
    equal(missing.available, false);
    match(missing.reason ?? "", /not found on PATH.*apt-get install --no-install-recommends/);

    const old = await fakeQemu(dir, "QEMU emulator version 5.1.0", "microvm  microvm\\n");
    const tooOld = await probeQemu(old);
    equal(tooOld.available, false);
    equal(tooOld.version, "5.1.0");
    match(tooOld.reason ?? "", /too old/);

    await Deno.remove(old);
    const noMicrovm = await probeQemu(
      await fakeQemu(dir, "QEMU emulator version 8.2.0", "pc  Standard PC\\nq35  Q35\\n"),
    );
    equal(noMicrovm.available, false);
    match(noMicrovm.reason ?? "", /without the microvm machine/);

    await Deno.remove(`${dir}/qemu-system-x86_64`);
    const path = await fakeQemu(
      dir,
      "QEMU emulator version 8.2.0",
      "pc  Standard PC\\nmicrovm  microvm (i386)\\n",
    );
    deepEqual(await probeQemu(path), { available: true, binary: path, version: "8.2.0" });

    const notQemu = `${dir}/true`;
    await Deno.writeTextFile(notQemu, "#!/bin/sh\necho hello\n");
    await Deno.chmod(notQemu, 0o755);
    match((await probeQemu(notQemu)).reason ?? "", /did not print a QEMU version/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
