/**
 * The compatibility path end to end: an OCI image built with umoci (several layers: a later one
 * deletes a file and replaces a directory with a file), pushed with skopeo to Debian's
 * docker-registry, then `volar vms create --image` pulls it, builds its root filesystem once and
 * boots it with kestrel running the image's own Entrypoint + Cmd, Env and WorkingDir. A second
 * VM of the same image copies nothing. The registry runs inside the daemon's network namespace
 * (the daemon pulls from there), on its loopback.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { wgetInNetns } from "../net/_testing.ts";
import { ImageList, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon } from "./_harness.ts";

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

async function volarOk(daemon: E2eDaemon, ...args: string[]): Promise<string> {
  const r = await daemon.volar(...args);
  equal(r.code, 0, `volar ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** docker-registry inside `ns`, on its loopback; stopped by PID. */
async function startRegistry(ns: string, dir: string, port: number) {
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/cfg.yml`,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n` +
      `  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "docker-registry", "serve", `${dir}/cfg.yml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await wgetInNetns(ns, `http://127.0.0.1:${port}/v2/`, { timeoutMs: 2000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

const CHECK_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo
if [ -e /etc/secret ]; then echo secret-present; else echo secret-absent; fi
if [ -f /data ]; then echo data-is-file; else echo data-not-file; fi
echo "pwd=$(pwd)"
echo "hostname=$(hostname)"
`;

/** An image of 4 layers: the tree, a whiteout of /etc/secret, a whiteout of /data, /data as a file. */
async function buildImage(dir: string): Promise<string> {
  const tree = `${dir}/tree`;
  for (const d of ["bin", "www/cgi-bin", "etc", "data"]) {
    await Deno.mkdir(`${tree}/${d}`, { recursive: true });
  }
  await Deno.copyFile("/bin/busybox", `${tree}/bin/busybox`);
  await Deno.chmod(`${tree}/bin/busybox`, 0o755);
  for (const applet of ["sh", "hostname", "pwd"]) {
    await Deno.symlink("busybox", `${tree}/bin/${applet}`);
  }
  await Deno.writeTextFile(`${tree}/www/index.html`, "hello from an OCI image\n");
  await Deno.writeTextFile(`${tree}/www/cgi-bin/check`, CHECK_CGI);
  await Deno.chmod(`${tree}/www/cgi-bin/check`, 0o755);
  await Deno.writeTextFile(`${tree}/etc/secret`, "to be deleted by a later layer\n");
  await Deno.writeTextFile(`${tree}/data/inside`, "a directory a later layer replaces\n");
  await Deno.writeTextFile(`${dir}/data-file`, "now a file\n");
  const layout = `${dir}/layout`;
  const image = `${layout}:1.0`;
  await run("umoci", "init", "--layout", layout);
  await run("umoci", "new", "--image", image);
  await run("umoci", "insert", "--image", image, tree, "/");
  await run("umoci", "insert", "--image", image, "--whiteout", "/etc/secret");
  await run("umoci", "insert", "--image", image, "--whiteout", "/data");
  await run("umoci", "insert", "--image", image, `${dir}/data-file`, "/data");
  await run(
    "umoci",
    "config",
    "--image",
    image,
    "--config.entrypoint",
    "/bin/busybox",
    ...["httpd", "-f", "-p", "80", "-h", "/www"].flatMap((c) => ["--config.cmd", c]),
    "--config.exposedports",
    "80/tcp",
    "--config.workingdir",
    "/www",
    "--config.env",
    "GREETING=hello",
  );
  return layout;
}

Deno.test("an OCI image from a real registry boots as a microVM in one command", async () => {
  const daemon = await startDaemon();
  const work = `${daemon.dir}/image`;
  const port = 5000 + Math.floor(Math.random() * 1000);
  const registry = await startRegistry(daemon.ns, `${work}/registry`, port);
  try {
    const layout = await buildImage(work);
    await run(
      "ip",
      "netns",
      "exec",
      daemon.ns,
      "skopeo",
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `oci:${layout}:1.0`,
      `docker://127.0.0.1:${port}/demo/web:1.0`,
    );
    const ref = `127.0.0.1:${port}/demo/web:1.0`;

    // Bad input first: an unknown tag is a clear error and leaves no VM.
    const unknown = await daemon.volar(
      "vms",
      "create",
      "nope",
      "--image",
      `127.0.0.1:${port}/demo/web:2.0`,
      "--insecure-registry",
    );
    equal(unknown.code, 1);
    match(unknown.stderr, /2\.0/);
    equal((await daemon.volar("vms", "get", "nope")).code, 1, "no VM is left behind");

    // One command: pull (progress on stderr), root filesystem, boot, the image's own process.
    const created = await daemon.volar(
      "vms",
      "create",
      "web",
      "--image",
      ref,
      "--insecure-registry",
      "--json",
    );
    equal(created.code, 0, created.stderr);
    const web = VmRecord.parse(JSON.parse(created.stdout));
    equal(web.state, "running");
    equal(web.image, ref);
    equal(web.workload?.healthy, true, JSON.stringify(web.workload));
    equal(await wgetInNetns(daemon.ns, `http://${web.ip}/index.html`), "hello from an OCI image\n");
    const check = await wgetInNetns(daemon.ns, `http://${web.ip}/cgi-bin/check`);
    match(check, /^secret-absent$/m, "the whiteout deleted /etc/secret");
    match(check, /^data-is-file$/m, "a later layer replaced the /data directory with a file");
    match(check, /^hostname=web$/m);

    // A second VM of the same image shares the root filesystem: nothing is copied.
    const second = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "web2", "--image", ref, "--json"),
    ));
    equal(second.state, "running");
    equal(
      await wgetInNetns(daemon.ns, `http://${second.ip}/index.html`),
      "hello from an OCI image\n",
    );
    const images = ImageList.parse(JSON.parse(await volarOk(daemon, "images", "list", "--json")));
    equal(images.images.length, 1);
    deepEqual(images.images[0]!.used_by.sort(), ["web", "web2"]);
    const du = Number((await run("du", "-sk", `${daemon.dir}/state/vms/web2`)).split("\t")[0]);
    ok(du < 16 * 1024, `the second VM's own disk uses ${du} KiB (its writable layer only)`);

    // An image in use cannot be removed; after its VMs are gone it can.
    const busy = await daemon.volar("images", "rm", ref);
    equal(busy.code, 1);
    match(busy.stderr, /used by VM web, web2/);
    await volarOk(daemon, "vms", "delete", "web");
    await volarOk(daemon, "vms", "delete", "web2");
    await volarOk(daemon, "images", "rm", ref);
    equal(
      ImageList.parse(JSON.parse(await volarOk(daemon, "images", "list", "--json"))).images.length,
      0,
    );
  } finally {
    await registry.stop();
    await daemon.dispose();
  }
});
