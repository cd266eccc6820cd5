import { deepEqual, equal, throws } from "node:assert/strict";
import type { ImageProcess } from "./image.ts";
import { imageArgv, imageManifest } from "./image_manifest.ts";

const base: ImageProcess = {
  entrypoint: ["/entry.sh"],
  cmd: ["serve", "--port", "80"],
  env: ["PATH=/usr/bin:/bin", "GREETING=hi=there"],
  workdir: "/srv",
  user: "101:101",
  exposed_ports: ["53/udp", "80/tcp"],
};
const none = { env: {}, entrypoint: null, cmd: null };
const image = (config: ImageProcess, ref = "127.0.0.1:5000/demo/web:1.0") => ({
  ref,
  digest: `sha256:${"a".repeat(64)}`,
  config,
  rootfs: { path: "/state/images/rootfs/a.erofs", checksum: `sha256:${"b".repeat(64)}` },
});

Deno.test("imageArgv() follows docker run: --entrypoint drops the image's Cmd, --cmd replaces it", () => {
  deepEqual(imageArgv(base, none, "x"), ["/entry.sh", "serve", "--port", "80"]);
  deepEqual(imageArgv(base, { ...none, cmd: ["sh"] }, "x"), ["/entry.sh", "sh"]);
  deepEqual(imageArgv(base, { ...none, entrypoint: ["/bin/sh"] }, "x"), ["/bin/sh"]);
  deepEqual(imageArgv(base, { ...none, entrypoint: ["/bin/sh"], cmd: ["-c", "id"] }, "x"), [
    "/bin/sh",
    "-c",
    "id",
  ]);
  throws(
    () => imageArgv({ ...base, entrypoint: null, cmd: null }, none, "demo:1"),
    /image demo:1 has no Entrypoint and no Cmd: give the program to run with --entrypoint or --cmd/,
  );
});

Deno.test("imageManifest() carries the image's process, env overrides and a TCP health check", () => {
  const m = imageManifest(image(base), { ...none, env: { GREETING: "override", EXTRA: "1" } });
  equal(m.name, "web");
  equal(m.version, "1.0");
  equal(m.init.mode, "kestrel");
  deepEqual(m.workload.entrypoint, ["/entry.sh", "serve", "--port", "80"]);
  deepEqual(m.workload.env, { PATH: "/usr/bin:/bin", GREETING: "override", EXTRA: "1" });
  equal(m.workload.workdir, "/srv");
  equal(m.workload.user, "101:101");
  equal(m.workload.base_url, "http://127.0.0.1:80");
  deepEqual([m.health_check?.kind, m.health_check?.port], ["tcp", 80]);
  deepEqual(m.rootfs, {
    url: "/state/images/rootfs/a.erofs",
    checksum: `sha256:${"b".repeat(64)}`,
    format: "raw",
  });
  equal(m.labels["volant.image"], "127.0.0.1:5000/demo/web:1.0");
});

Deno.test("imageManifest(): no exposed port means no health check; name:group users keep the name", () => {
  const m = imageManifest(
    image({ ...base, exposed_ports: [], user: "nginx:nginx", workdir: null, env: [] }, "busybox"),
    none,
  );
  equal(m.health_check, undefined);
  equal(m.workload.user, "nginx");
  equal(m.workload.workdir, undefined);
  equal(m.name, "busybox");
  equal(m.version, "a".repeat(12));
  equal(m.workload.env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  throws(
    () => imageManifest(image({ ...base, user: "Bad User" }), none),
    /sets User "Bad User", which is not a uid, uid:gid or user name/,
  );
});
