import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  absoluteImageSource,
  parseImageRef,
  parseImageSource,
  repositoryName,
} from "./reference.ts";

const HEX = "0123456789abcdef".repeat(4);

Deno.test("parseImageRef() reads a local registry reference with port, path and tag", () => {
  deepEqual(parseImageRef("127.0.0.1:5000/demo/nginx:1.0"), {
    registry: "127.0.0.1:5000",
    repository: "demo/nginx",
    tag: "1.0",
    canonical: "127.0.0.1:5000/demo/nginx:1.0",
  });
});

Deno.test("parseImageRef() applies the Docker Hub defaults", () => {
  deepEqual(parseImageRef("nginx"), {
    registry: "registry-1.docker.io",
    repository: "library/nginx",
    tag: "latest",
    canonical: "docker.io/library/nginx:latest",
  });
  equal(parseImageRef("bitnami/redis:7").canonical, "docker.io/bitnami/redis:7");
  equal(parseImageRef("bitnami/redis:7").registry, "registry-1.docker.io");
  for (const alias of ["docker.io", "index.docker.io", "registry-1.docker.io"]) {
    equal(parseImageRef(`${alias}/nginx:1`).canonical, "docker.io/library/nginx:1");
  }
});

Deno.test("parseImageRef() keeps a digest and leaves the tag out unless given", () => {
  const pinned = parseImageRef(`nginx@sha256:${HEX}`);
  equal(pinned.tag, undefined);
  equal(pinned.digest, `sha256:${HEX}`);
  equal(pinned.canonical, `docker.io/library/nginx@sha256:${HEX}`);
  const both = parseImageRef(`localhost/app:v2@sha256:${HEX}`);
  equal(both.registry, "localhost");
  equal(both.tag, "v2");
  equal(both.canonical, `localhost/app:v2@sha256:${HEX}`);
});

Deno.test("parseImageRef() recognises hosts by dot, colon, localhost or capitals", () => {
  equal(parseImageRef("localhost/a").registry, "localhost");
  equal(parseImageRef("localhost:5000/a/b/c:t").repository, "a/b/c");
  equal(parseImageRef("ghcr.io/org/tool").registry, "ghcr.io");
  equal(parseImageRef("[::1]:5000/x").registry, "[::1]:5000");
  equal(parseImageRef("myhost/app").registry, "registry-1.docker.io");
  equal(parseImageRef("myhost/app").repository, "myhost/app");
  equal(parseImageRef("ab_c-d__e/f--g.h").repository, "ab_c-d__e/f--g.h");
});

Deno.test("repositoryName() gives the name without tag or digest", () => {
  equal(repositoryName(parseImageRef("nginx:1")), "docker.io/library/nginx");
  equal(repositoryName(parseImageRef("127.0.0.1:5000/demo/x:1")), "127.0.0.1:5000/demo/x");
});

const BAD: [string, string][] = [
  ["", "empty"],
  ["Nginx", "lowercase"],
  ["docker.io/Library/nginx", "lowercase"],
  ["nginx:", "tag"],
  ["nginx:-x", "tag"],
  [`nginx:${"x".repeat(129)}`, "tag"],
  ["nginx@sha256:abc", "digest"],
  [`nginx@md5:${HEX}`, "digest"],
  ["a//b", "empty path component"],
  ["a/b/", "empty path component"],
  ["foo bar", "white space"],
  ["bad_host:x:1/app", "registry"],
  ["ex-.com/app", "registry"],
  ["app-", "repository component"],
  ["a..b", "repository component"],
  [":tag", "missing"],
  [`r.io/${"a".repeat(260)}`, "255"],
];

for (const [text, why] of BAD) {
  Deno.test(`parseImageRef() rejects ${JSON.stringify(text.slice(0, 40))} (${why})`, () => {
    throws(() => parseImageRef(text), (e: unknown) => {
      ok(e instanceof VolantError);
      equal(e.code, "invalid_argument");
      ok(e.message.includes(JSON.stringify(text)), e.message);
      ok(e.message.includes(why), e.message);
      ok(e.message.includes("expected [registry[:port]/]name[:tag]"), e.message);
      return true;
    });
  });
}

Deno.test("parseImageSource() reads local sources as skopeo names them", () => {
  deepEqual(parseImageSource("docker-archive:/tmp/app.tar"), {
    kind: "docker-archive",
    path: "/tmp/app.tar",
  });
  deepEqual(parseImageSource("docker-archive:/tmp/app.tar:demo/app:2"), {
    kind: "docker-archive",
    path: "/tmp/app.tar",
    tag: "demo/app:2",
  });
  deepEqual(parseImageSource("oci:/srv/layouts/app:1.0"), {
    kind: "oci-layout",
    path: "/srv/layouts/app",
    tag: "1.0",
  });
  deepEqual(parseImageSource("oci:/srv/my layout"), { kind: "oci-layout", path: "/srv/my layout" });
});

Deno.test("parseImageSource() hands everything else to parseImageRef()", () => {
  deepEqual(parseImageSource("127.0.0.1:5000/demo/nginx:1.0"), {
    kind: "registry",
    ref: parseImageRef("127.0.0.1:5000/demo/nginx:1.0"),
  });
  const hub = parseImageSource("busybox:1.36");
  equal(hub.kind === "registry" && hub.ref.canonical, "docker.io/library/busybox:1.36");
  // Only the exact transports are local sources; a registry host named like one is not.
  equal(parseImageSource("ocihost:5000/app").kind, "registry");
});

const BAD_SOURCES: [string, string][] = [
  ["oci:", "OCI layout directory path is missing"],
  ["oci::1.0", "OCI layout directory path is missing"],
  ["oci:layouts/app:1.0", 'path "layouts/app" is not absolute'],
  ["oci:/srv/app:", 'tag "" after the layout path'],
  ["oci:/srv/app:-x", 'tag "-x" after the layout path'],
  ["docker-archive:", "archive path is missing"],
  ["docker-archive:app.tar", 'archive path "app.tar" is not absolute'],
  ["docker-archive:/tmp/app.tar:Bad Name", 'image name "Bad Name" after the archive path'],
  ["docker-archive:/tmp/a\nb.tar", "control characters"],
  ["docker-archive:/tmp/app.tar:", 'image name "" after the archive path: it is empty'],
];

for (const [text, why] of BAD_SOURCES) {
  Deno.test(`parseImageSource() rejects ${JSON.stringify(text)} (${why})`, () => {
    throws(() => parseImageSource(text), (e: unknown) => {
      ok(e instanceof VolantError);
      equal(e.code, "invalid_argument");
      equal(e.details?.field, "image");
      ok(e.message.includes(JSON.stringify(text)), e.message);
      ok(e.message.includes(why), e.message);
      ok(e.message.includes("oci:<absolute dir>[:tag] or docker-archive:"), e.message);
      return true;
    });
  });
}

Deno.test("parseImageSource() reports a bad registry reference as parseImageRef() does", () => {
  throws(() => parseImageSource("Nginx"), /Image reference "Nginx" is invalid: .*lowercase/);
});

Deno.test("absoluteImageSource() resolves a local source's relative path, nothing else", () => {
  equal(absoluteImageSource("oci:layout:1.0", "/srv"), "oci:/srv/layout:1.0");
  equal(absoluteImageSource("oci:./a/../b", "/srv"), "oci:/srv/b");
  equal(absoluteImageSource("docker-archive:app.tar", "/tmp/x"), "docker-archive:/tmp/x/app.tar");
  equal(
    absoluteImageSource("docker-archive:app.tar:demo/app:1", "/w"),
    "docker-archive:/w/app.tar:demo/app:1",
  );
  equal(absoluteImageSource("docker-archive:/abs.tar", "/w"), "docker-archive:/abs.tar");
  equal(absoluteImageSource("oci:", "/w"), "oci:", "left for the parser to refuse");
  equal(absoluteImageSource("127.0.0.1:5000/x:1", "/w"), "127.0.0.1:5000/x:1");
});
