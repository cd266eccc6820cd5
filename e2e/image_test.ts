/**
 * The compatibility path end to end: an OCI image built with umoci (several layers: a later one
 * deletes a file and replaces a directory with a file), pushed with skopeo to Debian's
 * docker-registry, then `volar vms create --image` pulls it, builds its root filesystem once and
 * boots it with kestrel running the image's own Entrypoint + Cmd, Env and WorkingDir. A second
 * VM of the same image copies nothing. The registry runs inside the daemon's network namespace
 * (the daemon pulls from there), on its loopback. VMs boot from the same image as local sources
 * (`oci:<dir>:<tag>`, `docker-archive:<file>`). Then `volar build` (strategy oci_rootfs) turns
 * the same image into a plugin whose rootfs boots as the VM's root.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { wgetInNetns } from "../net/testing.ts";
import { ImageList, VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, startDaemon, volarOk } from "./harness.ts";
import { type E2eRegistry, pushTestImage, run, startRegistryInNetns } from "./registry.ts";

Deno.test("an OCI image from a real registry boots as a microVM in one command", async () => {
  let daemon: E2eDaemon | undefined;
  let registry: E2eRegistry | undefined;
  try {
    daemon = await startDaemon();
    const work = `${daemon.dir}/image`;
    const port = 5000 + Math.floor(Math.random() * 1000);
    registry = await startRegistryInNetns(daemon.ns, `${work}/registry`, port);
    const ref = await pushTestImage(daemon.ns, work, port);

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
    match(check, /^greeting=hello$/m, "the image's Env reaches its process");

    // A second VM of the same image shares the root filesystem: nothing is copied.
    const second = VmRecord.parse(JSON.parse(
      await volarOk(
        daemon,
        "vms",
        "create",
        "web2",
        "--image",
        ref,
        "--env",
        "GREETING=second",
        "--json",
      ),
    ));
    equal(second.state, "running");
    equal(
      await wgetInNetns(daemon.ns, `http://${second.ip}/index.html`),
      "hello from an OCI image\n",
    );
    match(
      await wgetInNetns(daemon.ns, `http://${second.ip}/cgi-bin/check`),
      /^greeting=second$/m,
      "--env overrides the image's Env",
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

    // Local sources work wherever a reference does: VMs boot straight from the OCI layout
    // (oci:<dir>:<tag>) and from a `docker save` archive (docker-archive:<file>, written by
    // skopeo in the format docker save writes).
    await run(
      "skopeo",
      "copy",
      "--quiet",
      `oci:${work}/layout:1.0`,
      `docker-archive:${work}/web.tar:demo/web:1.0`,
    );
    const locals: [string, string][] = [
      ["from-oci", `oci:${work}/layout:1.0`],
      ["from-archive", `docker-archive:${work}/web.tar`],
    ];
    for (const [name, image] of locals) {
      const vm = VmRecord.parse(JSON.parse(
        await volarOk(daemon, "vms", "create", name, "--image", image, "--json"),
      ));
      equal(vm.state, "running");
      equal(vm.image, image);
      equal(vm.workload?.healthy, true, JSON.stringify(vm.workload));
      equal(
        await wgetInNetns(daemon.ns, `http://${vm.ip}/index.html`),
        "hello from an OCI image\n",
      );
    }
    const imported = ImageList.parse(
      JSON.parse(await volarOk(daemon, "images", "list", "--json")),
    ).images;
    deepEqual(imported.flatMap((i) => i.used_by).sort(), ["from-archive", "from-oci"]);
    deepEqual(imported.map((i) => i.source).sort(), ["docker-archive", "oci-layout"]);
    for (const [name] of locals) await volarOk(daemon, "vms", "delete", name);

    // The same image as a reusable plugin: volar build (strategy oci_rootfs, from the local
    // OCI layout) → a rootfs artifact + manifest; the plugin boots with its rootfs as the root.
    await Deno.writeTextFile(
      `${work}/webfs.toml`,
      [
        `version = "1"`,
        `strategy = "oci_rootfs"`,
        `[plugin]`,
        `name = "webfs"`,
        `version = "1.0.0"`,
        `[source]`,
        `oci_layout = "${work}/layout"`,
        `tag = "1.0"`,
        `[output]`,
        `dir = "${work}/out"`,
      ].join("\n") + "\n",
    );
    const built = JSON.parse(
      await volarOk(
        daemon,
        "build",
        "-c",
        `${work}/webfs.toml`,
        "--image-cache",
        `${work}/cache`,
        "--json",
      ),
    );
    match(built.archive, /webfs\.rootfs\.erofs$/);
    await volarOk(daemon, "plugins", "install", "--manifest", built.manifest, "--allow-unsigned");
    const fs1 = VmRecord.parse(JSON.parse(
      await volarOk(daemon, "vms", "create", "fs1", "--plugin", "webfs", "--json"),
    ));
    equal(fs1.state, "running");
    equal(fs1.workload?.healthy, true, JSON.stringify(fs1.workload));
    match(
      await wgetInNetns(daemon.ns, `http://${fs1.ip}/cgi-bin/check`),
      /^secret-absent$/m,
      "the plugin's rootfs is the image's",
    );
  } finally {
    await registry?.stop();
    await daemon?.dispose();
  }
});
