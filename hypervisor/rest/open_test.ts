import { deepEqual, equal, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import type { KvmStatus } from "../kvm.ts";
import { openRestVmm, type OpenRestVmmOptions } from "./open.ts";

const KVM: KvmStatus = { available: true, path: "/dev/kvm", apiVersion: 12 };

Deno.test("openRestVmm() builds the driver with the binary the probe found", async () => {
  const probed: Array<[string, { kvm?: KvmStatus }]> = [];
  const made = await openRestVmm(
    "Test VMM",
    "test-vmm",
    { kvm: KVM, startTimeoutMs: 1_000 } as OpenRestVmmOptions,
    (binary, options) => {
      probed.push([binary, options]);
      return Promise.resolve({ available: true, binary: "/usr/bin/test-vmm", version: "1.0.0" });
    },
    (options) => options,
  );
  deepEqual(probed, [["test-vmm", { kvm: KVM }]], "the default binary, and the KVM result");
  deepEqual(made, { kvm: KVM, startTimeoutMs: 1_000, binary: "/usr/bin/test-vmm" });
});

Deno.test("openRestVmm() refuses an unusable VMM with the probe's reason", async () => {
  let made = false;
  await rejects(
    () =>
      openRestVmm(
        "Test VMM",
        "test-vmm",
        { binary: "/opt/test-vmm" },
        () =>
          Promise.resolve({
            available: false,
            binary: "/opt/test-vmm",
            version: "0.9.0",
            reason: "Test VMM 0.9.0 is too old",
          }),
        () => made = true,
      ),
    (e: VolantError) => {
      equal(e.code, "hypervisor_unavailable");
      equal(e.message, "Test VMM is unavailable: Test VMM 0.9.0 is too old");
      deepEqual(e.details, { binary: "/opt/test-vmm", version: "0.9.0" });
      return true;
    },
  );
  equal(made, false);
});
