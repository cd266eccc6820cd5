import { deepEqual, equal } from "node:assert/strict";
import { Manifest } from "./manifest.ts";
import { DEFAULT_PATH, earlyWorkloadFor } from "./workload_launch.ts";

function manifest(workload: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return Manifest.parse({
    name: "web",
    version: "1",
    initramfs: { url: "/srv/web.cpio.gz", checksum: "sha256:" + "0".repeat(64) },
    resources: { cpu_cores: 1, memory_mb: 256 },
    workload: { base_url: "http://127.0.0.1:80", entrypoint: ["/bin/httpd", "-f"], ...workload },
    ...extra,
  });
}

Deno.test("earlyWorkloadFor(): what kestrel would launch, with the default PATH and the workdir", () => {
  deepEqual(earlyWorkloadFor(manifest({ env: { A: "1" } }), { image: false }), {
    argv: ["/bin/httpd", "-f"],
    env: { PATH: DEFAULT_PATH, A: "1" },
    workdir: "/",
  });
  deepEqual(
    earlyWorkloadFor(manifest({ user: "33:44", workdir: "/srv" }), { image: false }),
    { argv: ["/bin/httpd", "-f"], env: { PATH: DEFAULT_PATH }, workdir: "/srv", uid: 33, gid: 44 },
  );
});

Deno.test("earlyWorkloadFor(): left to kestrel whenever stage 0 could not launch it identically", () => {
  const no = (why: string, m: Manifest, image = false) =>
    equal(earlyWorkloadFor(m, { image }), undefined, why);
  no("an image VM (kestrel assembles the root)", manifest({}), true);
  no("a bare program name (PATH lookup in the root)", manifest({ entrypoint: ["httpd"] }));
  no("a user name (the root's /etc/passwd)", manifest({ user: "www" }));
  no("a uid without its gid (the root's /etc/passwd)", manifest({ user: "33" }));
  no("an id out of range", manifest({ user: "4294967296:1" }));
  no("a NUL byte", manifest({ env: { A: "x\0y" } }));
  no("an environment name env cannot set", manifest({ env: { "A=B": "1" } }));
  no("init none", manifest({}, { init: { mode: "none" } }));
  no(
    "a rootfs artifact",
    manifest({}, {
      rootfs: { url: "/srv/root.img", checksum: "sha256:" + "1".repeat(64), format: "raw" },
    }),
  );
});
