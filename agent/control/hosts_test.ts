import assert from "node:assert/strict";
import { hostsLine, rewriteHostFiles, rewriteHosts } from "./hosts.ts";

const OLD = { hostname: "web-1", ip: "10.1.2.10" };
const NEW = { hostname: "web-clone-1", ip: "10.1.2.11" };
/** What image_root.ts writes at boot. */
const BOOT_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
  "10.1.2.10\tweb-1\n";

Deno.test("rewriteHosts(): only kestrel's line changes", () => {
  const text = `${BOOT_HOSTS}10.1.2.10\tweb-1 alias\n`;
  assert.equal(
    rewriteHosts(text, OLD, NEW),
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
      "10.1.2.11\tweb-clone-1\n10.1.2.10\tweb-1 alias\n",
  );
  assert.equal(hostsLine({ hostname: "h", ip: undefined }), "127.0.1.1\th");
});

Deno.test("rewriteHostFiles(): rewrites what kestrel wrote in an image root", async () => {
  const root = await Deno.makeTempDir({ prefix: "kestrel-hosts-" });
  try {
    await Deno.mkdir(`${root}/etc`);
    await Deno.writeTextFile(`${root}/etc/hostname`, "web-1\n");
    await Deno.writeTextFile(`${root}/etc/hosts`, BOOT_HOSTS);
    assert.deepEqual(await rewriteHostFiles(root, OLD, NEW), ["/etc/hostname", "/etc/hosts"]);
    assert.equal(await Deno.readTextFile(`${root}/etc/hostname`), "web-clone-1\n");
    assert.equal(
      await Deno.readTextFile(`${root}/etc/hosts`),
      BOOT_HOSTS.replace("10.1.2.10\tweb-1", "10.1.2.11\tweb-clone-1"),
    );
    assert.deepEqual(await rewriteHostFiles(root, OLD, NEW), [], "nothing left to change");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rewriteHostFiles(): files the workload changed, replaced by symlinks, or missing stay as they are", async () => {
  const root = await Deno.makeTempDir({ prefix: "kestrel-hosts-" });
  const outside = await Deno.makeTempFile({ prefix: "kestrel-outside-" });
  try {
    assert.deepEqual(await rewriteHostFiles(root, OLD, NEW), [], "no /etc at all");
    await Deno.mkdir(`${root}/etc`);
    await Deno.writeTextFile(`${root}/etc/hostname`, "my-own-name\n");
    await Deno.writeTextFile(outside, BOOT_HOSTS);
    await Deno.symlink(outside, `${root}/etc/hosts`);
    assert.deepEqual(await rewriteHostFiles(root, OLD, NEW), []);
    assert.equal(await Deno.readTextFile(`${root}/etc/hostname`), "my-own-name\n");
    assert.equal(await Deno.readTextFile(outside), BOOT_HOSTS, "a symlink is never followed");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside);
  }
});

Deno.test("rewriteHostFiles(): an /etc that is a symlink out of the root is left alone", async () => {
  const root = await Deno.makeTempDir({ prefix: "kestrel-hosts-" });
  const elsewhere = await Deno.makeTempDir({ prefix: "kestrel-etc-" });
  try {
    await Deno.writeTextFile(`${elsewhere}/hostname`, "web-1\n");
    await Deno.symlink(elsewhere, `${root}/etc`);
    assert.deepEqual(await rewriteHostFiles(root, OLD, NEW), []);
    assert.equal(await Deno.readTextFile(`${elsewhere}/hostname`), "web-1\n");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});
