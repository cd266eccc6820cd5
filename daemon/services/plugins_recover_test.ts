import { deepEqual } from "node:assert/strict";
import { writeCpio } from "../../kernels/cpio.ts";
import { makeTestEnv } from "../testing.ts";

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("plugins.recover(): what installs cut short left goes, installed plugins' blobs stay", async () => {
  const env = await makeTestEnv();
  try {
    const daemon = env.open();
    const archive = writeCpio([
      { type: "file", path: "hello", data: new TextEncoder().encode("hi\n"), mode: 0o644 },
    ]);
    await Deno.writeFile(`${env.root}/web.cpio`, archive);
    const hex = await sha256(archive);
    await daemon.plugins.install({
      manifest: {
        name: "web",
        version: "1.0.0",
        initramfs: { url: `${env.root}/web.cpio`, checksum: `sha256:${hex}` },
        resources: { cpu_cores: 1, memory_mb: 128 },
        workload: { entrypoint: ["/bin/httpd"], base_url: "http://127.0.0.1:80" },
      },
      allow_unsigned: true,
    });
    // A daemon killed mid-install: a temp file, and a blob (with its fingerprint) no row names.
    const cache = `${env.stateDir}/artifacts`;
    await Deno.writeTextFile(`${cache}/tmp/${"c".repeat(64)}.1234.part`, "half");
    await Deno.writeTextFile(`${cache}/sha256/${"d".repeat(64)}`, "orphan");
    await Deno.writeTextFile(`${cache}/sha256/${"d".repeat(64)}.fp`, "{}");

    deepEqual(await daemon.plugins.recover(), { blobs: 1, temp: 1 });
    deepEqual(await names(`${cache}/tmp`), []);
    deepEqual(await names(`${cache}/sha256`), [hex, `${hex}.fp`]);
    deepEqual(
      await daemon.plugins.recover(),
      { blobs: 0, temp: 0 },
      "nothing more the second time",
    );
  } finally {
    await env.dispose();
  }
});
