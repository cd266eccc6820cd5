import { equal } from "node:assert/strict";
import { limitFiles } from "./cgroup.ts";
import { VMM_MEMORY_OVERHEAD_MIB, vmmLimits } from "./limits.ts";

Deno.test("vmmLimits(): guest memory plus the measured overhead, a CPU per vCPU and a share", () => {
  const tcg = vmmLimits({ cpus: 1, memoryMib: 256, accel: "tcg" });
  equal(tcg.memoryMaxBytes, (256 + VMM_MEMORY_OVERHEAD_MIB.tcg) * 1024 ** 2);
  equal(tcg.cpuQuotaUs, 125_000);
  equal(tcg.cpuPeriodUs, 100_000);
  const set = vmmLimits({ cpus: 4, memoryMib: 1024, accel: "kvm", overheadMib: 32, pidsMax: 64 });
  equal(set.memoryMaxBytes, 1056 * 1024 ** 2);
  equal(set.cpuQuotaUs, 425_000);
  equal(set.pidsMax, 64);
  equal(limitFiles("v2", set)["cpu.max"], "425000 100000");
  equal(limitFiles("v1", set)["cpu.cfs_quota_us"], "425000");
});
