/**
 * The performance path end to end: `volar build` turns a static binary (busybox-static's httpd)
 * into an initramfs appliance and its manifest; the daemon installs and boots it with networking
 * and a page is fetched from it — with the binary itself as PID 1 (`init.mode = "none"`), and
 * supervised by kestrel (`init.mode = "kestrel"`).
 */
import { wgetInNetns } from "../net/testing.ts";
import { equal, match } from "node:assert/strict";
import { VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { httpdApplianceConfig } from "./httpd_appliance.ts";

Deno.test("volar build appliances boot through the daemon and serve HTTP (init none and kestrel)", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    const work = `${daemon.dir}/app`;
    await Deno.mkdir(`${work}/www`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${work}/busybox`);
    await Deno.chmod(`${work}/busybox`, 0o755);
    for (const mode of ["none", "kestrel"] as const) {
      const name = `hello-${mode}`;
      await Deno.writeTextFile(`${work}/www/index.html`, `served by ${name}\n`);
      await Deno.writeTextFile(`${work}/${name}.toml`, httpdApplianceConfig(name, mode));
      const built = JSON.parse(
        await volarOk(daemon, "build", "-c", `${work}/${name}.toml`, "-o", `${work}/out`, "--json"),
      );
      match(built.sha256, /^sha256:[0-9a-f]{64}$/);
      await volarOk(
        daemon,
        "plugins",
        "install",
        "--manifest",
        built.manifest,
        "--allow-unsigned",
      );
      const vm = VmRecord.parse(JSON.parse(
        await volarOk(daemon, "vms", "create", name, "--plugin", name, "--json"),
      ));
      equal(vm.state, "running");
      const page = await wgetInNetns(daemon.ns, `http://${vm.ip}/index.html`);
      equal(page, `served by ${name}\n`);
      const serial = await Deno.readTextFile(`${daemon.dir}/log/vms/${name}/serial.log`);
      if (mode === "none") {
        match(serial, /VOLANT_STAGE0_EXEC \/bin\/busybox httpd/, "stage 0 handed PID 1 over");
      } else {
        match(serial, /KESTREL_READY/);
        equal(vm.workload?.healthy, true);
      }
      await volarOk(daemon, "vms", "delete", name);
    }
  } finally {
    await daemon?.dispose();
  }
});
