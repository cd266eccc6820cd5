import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { cgroupParentDirs, type CgroupSources, detectCgroupHost } from "./cgroup_host.ts";

const V2_ONLY = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
const HYBRID = [
  "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
  "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
  "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids",
  "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
].join("\n");
const HYBRID_CGROUP = "8:pids:/\n4:memory:/job/7\n1:cpu,cpuacct:/\n0::/\n";

function sources(mountinfo: string, procCgroup: string, files: Record<string, string>) {
  return {
    mountinfo,
    procCgroup,
    readFile: (path: string) => Promise.resolve(files[path] ?? null),
  } satisfies CgroupSources;
}

Deno.test("detectCgroupHost() takes cgroup v2 when it offers memory, cpu and pids", async () => {
  const host = await detectCgroupHost(
    "auto",
    sources(V2_ONLY, "0::/system.slice/volantd.service\n", {
      "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
    }),
  );
  equal(host.version, "v2");
  deepEqual(host.mounts, {
    memory: "/sys/fs/cgroup",
    cpu: "/sys/fs/cgroup",
    pids: "/sys/fs/cgroup",
  });
  equal(host.own.memory, "/system.slice/volantd.service");
  equal(cgroupParentDirs(host, "auto").cpu, "/sys/fs/cgroup/volant");
  equal(cgroupParentDirs(host, "vms").cpu, "/sys/fs/cgroup/system.slice/volantd.service/vms");
});

Deno.test("detectCgroupHost() falls back to the v1 hierarchies of a hybrid host", async () => {
  const src = sources(HYBRID, HYBRID_CGROUP, {
    "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
  });
  const host = await detectCgroupHost("auto", src);
  equal(host.version, "v1");
  deepEqual(host.mounts, {
    memory: "/sys/fs/cgroup/memory",
    cpu: "/sys/fs/cgroup/cpu,cpuacct",
    pids: "/sys/fs/cgroup/pids",
  });
  match(host.description, /lacks memory, cpu, pids/);
  // auto with v1: below the daemon's own cgroup in each hierarchy.
  deepEqual(cgroupParentDirs(host, "auto"), {
    memory: "/sys/fs/cgroup/memory/job/7/volant",
    cpu: "/sys/fs/cgroup/cpu,cpuacct/volant",
    pids: "/sys/fs/cgroup/pids/volant",
  });
  equal(cgroupParentDirs(host, "/vmms").memory, "/sys/fs/cgroup/memory/vmms");
  // Insisting on v2 is refused with what the host has and the way out.
  const err = await detectCgroupHost("v2", src).catch((e) => e);
  ok(err instanceof VolantError);
  equal(err.code, "unsupported");
  match(err.message, /cgroup2 at \/sys\/fs\/cgroup\/unified offers hugetlb/);
  match(err.message, /security\.jail: off/);
});

Deno.test("detectCgroupHost() refuses a host without the controllers", async () => {
  await rejects(
    detectCgroupHost("auto", sources("", "", {})),
    (e) => e instanceof VolantError && /no cgroup2 mount; no cgroup v1 hierarchies/.test(e.message),
  );
});

Deno.test("cgroupParentDirs() refuses a parent that is not a cgroup path", async () => {
  const host = await detectCgroupHost(
    "auto",
    sources(V2_ONLY, "0::/\n", { "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids" }),
  );
  for (const bad of ["", "../x", "a/../b", "a b", "/"]) {
    throws(() => cgroupParentDirs(host, bad), /security\.cgroup_parent/, bad);
  }
});
