import { deepEqual, equal, match, rejects } from "node:assert/strict";
import { ImageStore } from "../../images/mod.ts";
import { handImage, writeLayout } from "../../images/testing_registry.ts";
import { silentLogger } from "../log.ts";
import { openStore } from "../store/mod.ts";
import { newVm } from "../store/testing.ts";
import { ImageService } from "./images.ts";

const encoder = new TextEncoder();

Deno.test("ImageService: an OCI layout imports; used_by follows VM rows; removal waits for them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-images-svc-" });
  const store = openStore(`${dir}/state.db`);
  try {
    const image = await handImage([[
      { name: "bin/", type: "directory" },
      { name: "bin/hello", data: encoder.encode("#!/bin/sh\necho hi\n"), mode: 0o755 },
    ]], { Cmd: ["/bin/hello"], ExposedPorts: { "8080/tcp": {} } });
    await writeLayout(`${dir}/layout`, [{ tag: "1.0", image }]);
    const images = new ImageService({
      store: new ImageStore(`${dir}/images`),
      vms: store.vms,
      events: store.events,
      insecureRegistries: [],
      logger: silentLogger(),
    });
    const events: string[] = [];
    const pulled = await images.pull(
      { ref: `oci:${dir}/layout:1.0` },
      (p) => events.push(p.phase),
    );
    equal(pulled.digest, image.digest);
    deepEqual(pulled.config.cmd, ["/bin/hello"]);
    deepEqual(pulled.used_by, []);
    equal((await images.ensure(`oci:${dir}/layout:1.0`, false)).digest, image.digest);

    store.vms.insert(newVm("web", { image: `oci:${dir}/layout:1.0`, image_digest: image.digest }));
    deepEqual((await images.get(pulled.ref)).used_by, ["web"]);
    await rejects(images.remove(pulled.ref), /used by VM web; delete it first/);
    const boot = await images.bootImage("x", image.digest);
    match(boot.rootfs.checksum, /^sha256:[0-9a-f]{64}$/);
    equal(boot.rootfs.path, pulled.rootfs.path);

    store.vms.delete("web");
    await images.remove(pulled.ref);
    deepEqual(await images.list(), []);
    // Each pull and the removal is an event (the refused removal is none).
    const recorded = store.events.after(0, 10);
    deepEqual(recorded.map((e) => [e.type, e.name]), [
      ["image.pulled", pulled.ref],
      ["image.pulled", pulled.ref],
      ["image.removed", pulled.ref],
    ]);
    equal(recorded[0]!.type === "image.pulled" && recorded[0]!.image.digest, image.digest);
    await rejects(images.get(pulled.ref), /is not cached; pull it first/);
    await rejects(
      images.pull({ ref: "Not A Ref" }),
      /ref: Image reference "Not A Ref" is invalid: it contains white space/,
    );
    await rejects(
      images.pull({ ref: "oci:relative/layout" }),
      /ref: .*the OCI layout directory path "relative\/layout" is not absolute/,
    );
    await rejects(
      images.get(`oci:${dir}/layout:1.0`),
      /names a local source, not a stored image/,
    );
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
