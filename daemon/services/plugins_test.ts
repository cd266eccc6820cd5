import { deepEqual, equal, match, ok } from "node:assert/strict";
import { readCpio } from "../../kernels/cpio.ts";
import {
  generateKeyPair,
  type PrivateKeyFile,
  type PublicKey,
  signManifest,
} from "../../schema/mod.ts";
import { caught, exists, makeTestEnv, type TestDaemon, type TestEnv } from "../testing.ts";
import { vmPaths } from "./spec.ts";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

interface Fixture {
  env: TestEnv;
  daemon: TestDaemon;
  archive: Uint8Array<ArrayBuffer>;
  archivePath: string;
  manifest: Record<string, unknown>;
  key: { privateKey: PrivateKeyFile; publicKey: PublicKey };
}

/** A plugin whose initramfs archive holds one file, and a trusted key. */
async function fixture(): Promise<Fixture> {
  const env = await makeTestEnv();
  const daemon = env.open();
  const archive = new Uint8Array(
    (await import("../../kernels/cpio.ts")).writeCpio([
      { type: "dir", path: "www", mode: 0o755 },
      { type: "file", path: "www/index.html", data: new TextEncoder().encode("hi\n"), mode: 0o644 },
    ]),
  );
  const archivePath = `${env.root}/web.cpio`;
  await Deno.writeFile(archivePath, archive);
  const manifest = {
    name: "web",
    version: "1.0.0",
    initramfs: { url: archivePath, checksum: await sha256(archive) },
    resources: { cpu_cores: 2, memory_mb: 384 },
    workload: { entrypoint: ["/bin/httpd", "-f"], base_url: "http://127.0.0.1:80" },
    actions: { ping: { path: "/ping", method: "GET" } },
  };
  const key = await generateKeyPair();
  await daemon.plugins.trustKey({ public_key: key.publicKey.public_key, comment: "test" });
  return { env, daemon, archive, archivePath, manifest, key };
}

function blobs(env: TestEnv): Promise<string[]> {
  return Array.fromAsync(Deno.readDir(`${env.stateDir}/artifacts/sha256`)).then((e) =>
    e.map((x) => x.name).filter((n) => !n.endsWith(".fp")).sort()
  ).catch(() => []);
}

Deno.test("plugins: a signed plugin installs, backs a VM, and cannot be removed while used", async () => {
  const f = await fixture();
  try {
    const signed = await signManifest(f.manifest, f.key.privateKey);
    const record = await f.daemon.plugins.install({ manifest: signed });
    deepEqual(record.signature, { status: "verified", key_id: f.key.publicKey.key_id });
    deepEqual(record.actions, ["ping"]);
    equal(record.artifacts[0]?.size, f.archive.length);
    deepEqual(f.daemon.plugins.manifest("web"), signed, "the manifest is kept as signed");

    const vm = await f.daemon.service.create({ name: "app", plugin: "web" });
    deepEqual([vm.plugin, vm.cpu_cores, vm.memory_mb], ["web", 2, 384], "resources from manifest");
    const proc = f.env.registry.get(vm.pid!)!;
    const bytes = await Deno.readFile(proc.spec.initramfs!);
    const shared = await Deno.readFile(`${f.env.guestDir}/initramfs.cpio`);
    const afterShared = shared.length + ((4 - shared.length % 4) % 4);
    deepEqual(
      bytes.subarray(afterShared, afterShared + f.archive.length),
      f.archive,
      "the plugin's archive follows stage 0",
    );
    const tail = readCpio(bytes.subarray(afterShared + f.archive.length));
    const config = JSON.parse(
      new TextDecoder().decode(tail.find((m) => m.path === "volant/boot.json")!.data),
    );
    deepEqual(config.manifest.workload.entrypoint, ["/bin/httpd", "-f"]);
    const env = new TextDecoder().decode(tail.find((m) => m.path === "volant/boot.env")!.data);
    match(env, /^VOLANT_INIT='kestrel'$/m);
    // An absolute program and no user: stage 0 starts it before kestrel (kestrel adopts it).
    match(env, /^VOLANT_EARLY_EXEC=''\\''\/bin\/httpd'\\'' '\\''-f'\\'''$/m);

    const refused = await caught(() => f.daemon.plugins.remove("web"));
    equal(refused.code, "invalid_state");
    match(refused.message, /used by VM app/);
    deepEqual(f.daemon.plugins.get("web").used_by, ["app"]);

    await f.daemon.service.delete("app");
    await f.daemon.plugins.remove("web");
    deepEqual(await blobs(f.env), [], "the artifact goes with the last plugin using it");
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: unsigned, untrusted and tampered manifests are refused; nothing is left", async () => {
  const f = await fixture();
  try {
    const unsigned = await caught(() => f.daemon.plugins.install({ manifest: f.manifest }));
    equal(unsigned.code, "signature_rejected");
    match(unsigned.message, /not signed.*--allow-unsigned/);

    const stranger = await generateKeyPair();
    const foreign = await caught(async () =>
      f.daemon.plugins.install({ manifest: await signManifest(f.manifest, stranger.privateKey) })
    );
    equal(foreign.code, "signature_rejected");
    match(foreign.message, new RegExp(`key ${stranger.publicKey.key_id}.*volar keys trust`));

    const signed = await signManifest(f.manifest, f.key.privateKey);
    const tampered = await caught(() =>
      f.daemon.plugins.install({ manifest: { ...signed, version: "6.6.6" } })
    );
    equal(tampered.code, "signature_rejected");
    match(tampered.message, /does not verify/);

    deepEqual(f.daemon.plugins.list(), []);
    deepEqual(await blobs(f.env), [], "no artifact was fetched for a refused manifest");

    const allowed = await f.daemon.plugins.install({ manifest: f.manifest, allow_unsigned: true });
    deepEqual(allowed.signature, { status: "unsigned", key_id: null });
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: bad manifests name the field; a bad artifact leaves no row and no blob", async () => {
  const f = await fixture();
  try {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...f.manifest, colour: "red" }, /manifest\.colour: unknown field/],
      [
        { ...f.manifest, resources: { cpu_cores: "2", memory_mb: 384 } },
        /manifest\.resources\.cpu_cores/,
      ],
      [
        { ...f.manifest, initramfs: { url: f.archivePath, checksum: "md5:abc" } },
        /manifest\.initramfs\.checksum: must be sha256/,
      ],
      [{ ...f.manifest, workload: undefined }, /manifest\.workload/],
    ];
    for (const [manifest, message] of cases) {
      const err = await caught(() => f.daemon.plugins.install({ manifest, allow_unsigned: true }));
      equal(err.code, "invalid_argument", err.message);
      match(err.message, message);
    }
    const wrongSum = await caught(() =>
      f.daemon.plugins.install({
        manifest: {
          ...f.manifest,
          initramfs: { url: f.archivePath, checksum: `sha256:${"0".repeat(64)}` },
        },
        allow_unsigned: true,
      })
    );
    equal(wrongSum.code, "checksum_mismatch", wrongSum.message);
    const missing = await caught(() =>
      f.daemon.plugins.install({
        manifest: {
          ...f.manifest,
          initramfs: { url: `${f.env.root}/nope.cpio`, checksum: `sha256:${"0".repeat(64)}` },
        },
        allow_unsigned: true,
      })
    );
    equal(missing.code, "artifact_unavailable", missing.message);
    const neither = await caught(() => f.daemon.plugins.install({ allow_unsigned: true }));
    match(neither.message, /manifest: give exactly one of manifest or url/);
    const badUrl = await caught(() =>
      f.daemon.plugins.install({ url: `${f.env.root}/none.json`, allow_unsigned: true })
    );
    equal(badUrl.code, "artifact_unavailable");
    match(badUrl.message, /^url: cannot read the manifest/);

    deepEqual(f.daemon.plugins.list(), []);
    deepEqual(await blobs(f.env), []);
    const tmp = await Array.fromAsync(Deno.readDir(`${f.env.stateDir}/artifacts/tmp`)).catch(
      () => [],
    );
    deepEqual(tmp, [], "no partial download remains");
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: a tampered cached artifact is refused before boot; no VM is left", async () => {
  const f = await fixture();
  try {
    const manifestPath = `${f.env.root}/web.manifest.json`;
    await Deno.writeTextFile(
      manifestPath,
      JSON.stringify(await signManifest(f.manifest, f.key.privateKey)),
    );
    const record = await f.daemon.plugins.install({ url: `file://${manifestPath}` });
    equal(record.source, `file://${manifestPath}`);
    const blob = `${f.env.stateDir}/artifacts/sha256/${record.artifacts[0]!.checksum.slice(7)}`;
    await Deno.chmod(blob, 0o644);
    const file = await Deno.open(blob, { write: true });
    await file.write(new TextEncoder().encode("X"));
    file.close();

    const err = await caught(() => f.daemon.service.create({ name: "app", plugin: "web" }));
    match(err.message, /modified/);
    deepEqual(f.daemon.service.list(), [], "no VM row");
    ok(!(await exists(vmPaths(f.env.config, "app").runtimeDir)));
    deepEqual(f.env.registry.alive(), [], "no VMM process");
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: disabled plugins and removed keys stop new boots", async () => {
  const f = await fixture();
  try {
    await f.daemon.plugins.install({ manifest: await signManifest(f.manifest, f.key.privateKey) });
    equal(f.daemon.plugins.setEnabled("web", false).enabled, false);
    const disabled = await caught(() => f.daemon.service.create({ name: "app", plugin: "web" }));
    equal(disabled.code, "invalid_state");
    match(disabled.message, /disabled.*volar plugins enable web/);
    f.daemon.plugins.setEnabled("web", true);
    f.daemon.plugins.untrustKey(f.key.publicKey.key_id);
    const untrusted = await caught(() => f.daemon.service.create({ name: "app", plugin: "web" }));
    equal(untrusted.code, "signature_rejected");
    const unknown = await caught(() => f.daemon.service.create({ name: "app", plugin: "nope" }));
    equal(unknown.code, "not_found");
    match(unknown.message, /plugin nope is not installed/);
    deepEqual(f.daemon.service.list(), []);
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: a qcow2 disk naming a host file as its backing file is refused at install", async () => {
  const f = await fixture();
  try {
    const evil = `${f.env.root}/evil.qcow2`;
    const out = await new Deno.Command("qemu-img", {
      args: ["create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", evil],
      stderr: "piped",
    }).output();
    ok(out.success, new TextDecoder().decode(out.stderr));
    const manifest = {
      ...f.manifest,
      disks: [{
        name: "data",
        source: evil,
        checksum: await sha256(await Deno.readFile(evil)),
        format: "qcow2",
        readonly: true,
      }],
    };
    const err = await caught(() => f.daemon.plugins.install({ manifest, allow_unsigned: true }));
    equal(err.code, "invalid_argument", err.message);
    match(
      err.message,
      /^plugin web: disks\[0\] \(data\): the qcow2 image names a backing file "\/etc\/hostname"/,
    );
    deepEqual(f.daemon.plugins.list(), [], "no row");
    deepEqual(await blobs(f.env), [], "no blob this install fetched");
  } finally {
    await f.env.dispose();
  }
});

Deno.test("plugins: install, disable, enable and remove are events; refusals and no-ops are none", async () => {
  const f = await fixture();
  try {
    const heard: string[] = [];
    f.daemon.service.events.subscribe((e) => heard.push(`${e.type} ${e.name}`));
    await f.daemon.plugins.install({ manifest: await signManifest(f.manifest, f.key.privateKey) });
    f.daemon.plugins.setEnabled("web", false);
    f.daemon.plugins.setEnabled("web", false);
    f.daemon.plugins.setEnabled("web", true);
    await f.daemon.service.create({ name: "app", plugin: "web" });
    await caught(() => f.daemon.plugins.remove("web"));
    await f.daemon.service.delete("app");
    await f.daemon.plugins.remove("web");
    const logged = f.daemon.store.events.after(0, 100).filter((e) => e.type.startsWith("plugin."));
    deepEqual(logged.map((e) => e.type), [
      "plugin.installed",
      "plugin.disabled",
      "plugin.enabled",
      "plugin.removed",
    ]);
    deepEqual(heard.filter((h) => h.startsWith("plugin.")), logged.map((e) => `${e.type} web`));
    const removed = logged.at(-1)!;
    equal(removed.type === "plugin.removed" && removed.plugin.version, "1.0.0", "its last record");
    equal(logged[1]!.type === "plugin.disabled" && logged[1]!.plugin.enabled, false);
  } finally {
    await f.env.dispose();
  }
});
