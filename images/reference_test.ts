import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { parseImageRef, repositoryName } from "./reference.ts";

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
