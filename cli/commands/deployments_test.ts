import { deepEqual, equal, match } from "node:assert/strict";
import { writeCpio } from "../../kernels/cpio.ts";
import { DeploymentRecord } from "../../schema/mod.ts";
import { startDaemon, volar } from "../testing.ts";

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("volar deployments: create, list, get, scale, update, delete; bad input names the flag", async () => {
  const daemon = await startDaemon();
  const v = (...args: string[]) => volar(["--socket", daemon.socket, ...args]);
  try {
    const archive = writeCpio([
      { type: "file", path: "hello", data: new TextEncoder().encode("hi\n"), mode: 0o644 },
    ]);
    await Deno.writeFile(`${daemon.dir}/web.cpio`, archive);
    await Deno.writeTextFile(
      `${daemon.dir}/web.json`,
      JSON.stringify({
        name: "web",
        version: "1.0.0",
        initramfs: { url: `${daemon.dir}/web.cpio`, checksum: `sha256:${await sha256(archive)}` },
        resources: { cpu_cores: 1, memory_mb: 128 },
        workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
      }),
    );
    const installed = await v(
      "plugins",
      "install",
      "--manifest",
      `${daemon.dir}/web.json`,
      "--allow-unsigned",
    );
    equal(installed.code, 0, installed.stderr);

    const created = await v(
      "deployments",
      "create",
      "app",
      "--plugin",
      "web",
      "--replicas",
      "2",
      "--json",
    );
    equal(created.code, 0, created.stderr);
    const d = DeploymentRecord.parse(JSON.parse(created.stdout));
    equal(d.status, "ready");
    deepEqual(d.members.map((m) => [m.name, m.healthy]), [["app-1", true], ["app-2", true]]);

    const list = await v("deploy", "list");
    equal(list.code, 0, list.stderr);
    match(list.stdout, /^NAME\s+STATUS\s+READY\s+UP-TO-DATE\s+GEN\s+SOURCE/);
    match(list.stdout, /app\s+ready\s+2\/2\s+2\s+1\s+plugin web/);

    const scaled = await v("deployments", "scale", "app", "1", "--json");
    equal(scaled.code, 0, scaled.stderr);
    equal(DeploymentRecord.parse(JSON.parse(scaled.stdout)).members.length, 1);

    const updated = await v("deployments", "update", "app", "--memory", "192", "--json");
    equal(updated.code, 0, updated.stderr);
    const u = DeploymentRecord.parse(JSON.parse(updated.stdout));
    deepEqual([u.generation, u.updated, u.status], [2, 1, "ready"]);

    const get = await v("deployments", "get", "app");
    equal(get.code, 0, get.stderr);
    match(get.stdout, /replicas:\s+1\/1 ready, 1 at generation 2/);
    match(get.stdout, /app-1\s+running\s+yes/);

    const vms = await v("vms", "list", "--json");
    deepEqual(JSON.parse(vms.stdout).vms.map((vm: { deployment: string }) => vm.deployment), [
      "app",
    ]);

    // Bad input: named flags, nothing sent.
    const negative = await v("deployments", "create", "bad", "--plugin", "web", "--replicas", "-1");
    equal(negative.code, 2);
    match(negative.stderr, /--replicas/);
    const neither = await v("deployments", "create", "bad", "--replicas", "1");
    equal(neither.code, 2);
    match(neither.stderr, /invalid --plugin .*give a plugin or an image/);
    const missing = await v("deployments", "get", "ghost");
    equal(missing.code, 1);
    match(missing.stderr, /Deployment ghost does not exist/);
    const restart = await v("vms", "create", "x", "--restart", "sometimes");
    equal(restart.code, 2);
    match(restart.stderr, /--restart/);
    const reserved = await v("vms", "create", "app-9");
    equal(reserved.code, 1);
    match(reserved.stderr, /replica name of deployment app/);

    const deleted = await v("deployments", "delete", "app");
    equal(deleted.code, 0, deleted.stderr);
    const after = await v("deployments", "list", "--json");
    deepEqual(JSON.parse(after.stdout), { deployments: [] });
    deepEqual(JSON.parse((await v("vms", "list", "--json")).stdout), { vms: [] });
  } finally {
    await daemon.stop();
  }
});
