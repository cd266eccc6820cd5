import { deepEqual, equal, match, ok } from "node:assert/strict";
import { probeBoot, probeNonce, reapProbeLeftovers } from "./boot_probe.ts";
import { CloudHypervisorDriver } from "./cloud_hypervisor/driver.ts";
import { isAlive, readStartTime } from "./process/mod.ts";
import { type FakeVmmConfig, writeFakeCh } from "./testing/fake_ch_vmm.ts";
import { processesMentioning } from "./testing/protocol.ts";
import { vendoredDocument } from "./testing/openapi_contract.ts";

// probeBoot against a stand-in Cloud Hypervisor (it answers the real API; its simulated guest
// prints the probe marker, or hangs in early boot like a stock kernel under nested PVM).
const DOCUMENT = vendoredDocument("cloud_hypervisor/openapi/openapi-v53.0.yaml");

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function withFakeCh(
  config: Omit<FakeVmmConfig, "document" | "version">,
  fn: (dir: string, driver: CloudHypervisorDriver) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-boot-probe-" });
  try {
    await Deno.writeFile(`${dir}/vmlinux`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
    await Deno.writeFile(`${dir}/initramfs.cpio`, new Uint8Array(512));
    const fake = await writeFakeCh(dir, { document: DOCUMENT, version: "53.0.0", ...config });
    const driver = new CloudHypervisorDriver({ binary: fake.path, processExe: fake.processExe });
    await fn(dir, driver);
    deepEqual(await processesMentioning(dir), [], "no VMM process is left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function guest(dir: string, nonce = probeNonce()) {
  return {
    kernel: { path: `${dir}/vmlinux`, format: "vmlinux" as const },
    initramfs: `${dir}/initramfs.cpio`,
    nonce,
  };
}

Deno.test("probeBoot() passes when the guest prints the marker with its nonce, and cleans up", () =>
  withFakeCh({}, async (dir, driver) => {
    const workDir = `${dir}/probe`;
    const result = await probeBoot(driver, guest(dir), { workDir, timeoutMs: 10_000 });
    equal(result.ok, true, result.reason);
    equal(result.vmmStarted, true);
    ok(result.ms >= 0 && result.ms < 10_000);
    equal(await exists(workDir), false, "the probe's directory is removed");
  }));

Deno.test("probeBoot() fails within its deadline when the guest hangs, and ends the VMM", () =>
  withFakeCh({ hangGuest: true }, async (dir, driver) => {
    const workDir = `${dir}/probe`;
    const started = Date.now();
    const result = await probeBoot(driver, guest(dir), { workDir, timeoutMs: 1_500 });
    const took = Date.now() - started;
    equal(result.ok, false);
    equal(result.vmmStarted, true, "a hung guest is a verdict worth keeping");
    match(result.reason ?? "", /^the guest kernel did not reach its init within 1500 ms/);
    match(result.reason ?? "", /last console line: Probing EDD \(edd=off to disable\)\.\.\. ok/);
    equal(result.consoleTail, "Probing EDD (edd=off to disable)... ok");
    ok(took < 1_500 + 5_000, `the probe ended ${took} ms after it started`);
    equal(await exists(workDir), false);
  }));

Deno.test("probeBoot() reports a VMM that cannot start the VM as such (no guest verdict)", () =>
  withFakeCh({
    fail: {
      "PUT /api/v1/vm.create": { status: 500, message: "KVM_CREATE_VM: Cannot allocate memory" },
    },
  }, async (dir, driver) => {
    const result = await probeBoot(driver, guest(dir), {
      workDir: `${dir}/probe`,
      timeoutMs: 5_000,
    });
    equal(result.ok, false);
    equal(result.vmmStarted, false, "a VMM that never ran a guest says nothing of the guest");
    match(result.reason ?? "", /^cloud-hypervisor could not start the probe VM: .*Cannot allocate/);
    equal(await exists(`${dir}/probe`), false);
  }));

Deno.test("reapProbeLeftovers() ends the VMM a killed daemon's probe left, and its files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-probe-left-" });
  const child = new Deno.Command("sleep", { args: ["300"], stdout: "null", stderr: "null" })
    .spawn();
  try {
    const startTime = await readStartTime(child.pid);
    ok(startTime !== null);
    await Deno.writeTextFile(`${dir}/vmm.json`, JSON.stringify({ pid: child.pid, startTime }));
    await reapProbeLeftovers(dir);
    equal(await isAlive(child.pid, startTime), false, "the recorded VMM is gone");
    equal(await exists(dir), false);
    // A handle file naming a process that is gone (or another one by now) is harmless.
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/vmm.json`, "not json");
    await reapProbeLeftovers(dir);
    equal(await exists(dir), false);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already ended by the test.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
