import { deepEqual, ok } from "node:assert/strict";
import { chArgs } from "../cloud_hypervisor/config.ts";
import { fcArgs } from "../firecracker/config.ts";
import { programFiles } from "./program_files.ts";

Deno.test("programFiles(): a dynamic binary brings its library dirs and interpreter", async () => {
  const sleep = await Deno.realPath("/usr/bin/sleep");
  const files = await programFiles(sleep);
  deepEqual(files[0], sleep);
  ok(files.some((f) => /ld-linux/.test(f)), files.join(" "));
  ok(files.some((f) => /\/lib/.test(f) && !/ld-linux/.test(f)), files.join(" "));
});

Deno.test({
  name: "programFiles(): a static binary (as Cloud Hypervisor and Firecracker ship) is alone",
  ignore: !(await Deno.stat("/bin/busybox").then(() => true, () => false)),
  fn: async () => {
    const busybox = await Deno.realPath("/bin/busybox");
    const out = await new Deno.Command("ldd", { args: [busybox], stdout: "null", stderr: "null" })
      .output();
    if (out.success) return; // A dynamic busybox: nothing to show here.
    deepEqual(await programFiles(busybox), [busybox]);
  },
});

Deno.test("Cloud Hypervisor and Firecracker keep their own seccomp filters on", () => {
  for (const args of [chArgs("/run/volant/vms/web"), fcArgs("/run/volant/vms/web")]) {
    ok(!args.some((a) => /seccomp/.test(a)), args.join(" "));
  }
});
