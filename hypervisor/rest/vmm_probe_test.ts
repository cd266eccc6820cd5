import { deepEqual, equal, ok } from "node:assert/strict";
import { atLeast, formatVersion, parseVmmVersion } from "./vmm_probe.ts";

Deno.test("parseVmmVersion() reads Cloud Hypervisor's --version forms", () => {
  deepEqual(parseVmmVersion("cloud-hypervisor v53.0\n", "cloud-hypervisor"), {
    major: 53,
    minor: 0,
    patch: 0,
  });
  deepEqual(parseVmmVersion("cloud-hypervisor v53.0-246-gae44c2971-dirty", "cloud-hypervisor"), {
    major: 53,
    minor: 0,
    patch: 0,
  });
  deepEqual(parseVmmVersion("Cloud-Hypervisor 41.1.2", "cloud-hypervisor"), {
    major: 41,
    minor: 1,
    patch: 2,
  });
  equal(parseVmmVersion("cloud-hypervisor (unknown)", "cloud-hypervisor"), null);
  equal(parseVmmVersion("qemu 8.2.0", "cloud-hypervisor"), null);
});

Deno.test("parseVmmVersion() reads Firecracker's --version", () => {
  deepEqual(parseVmmVersion("Firecracker v1.16.1\n\n", "firecracker"), {
    major: 1,
    minor: 16,
    patch: 1,
  });
  deepEqual(parseVmmVersion("Firecracker v1.17.0-dev\n", "firecracker"), {
    major: 1,
    minor: 17,
    patch: 0,
  });
  equal(parseVmmVersion("cloud-hypervisor v53.0", "firecracker"), null);
});

Deno.test("atLeast() and formatVersion() compare and print releases", () => {
  ok(atLeast({ major: 53, minor: 0, patch: 0 }, { major: 53, minor: 0, patch: 0 }));
  ok(atLeast({ major: 1, minor: 17, patch: 0 }, { major: 1, minor: 16, patch: 9 }));
  ok(!atLeast({ major: 1, minor: 15, patch: 9 }, { major: 1, minor: 16, patch: 0 }));
  ok(!atLeast({ major: 52, minor: 99, patch: 0 }, { major: 53, minor: 0, patch: 0 }));
  equal(formatVersion({ major: 1, minor: 16, patch: 1 }), "1.16.1");
});
