import { deepEqual, equal, throws } from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import {
  type Descriptor,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  imageConfig,
  OCI_INDEX,
  OCI_MANIFEST,
  parseImageConfig,
  parseManifestDocument,
  type Platform,
  selectPlatform,
} from "./manifest.ts";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const D = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (c: string, platform?: Platform): Descriptor => ({
  mediaType: OCI_MANIFEST,
  digest: D(c),
  size: 10,
  ...(platform === undefined ? {} : { platform }),
});
const manifest = (layerType = "application/vnd.oci.image.layer.v1.tar+gzip") => ({
  schemaVersion: 2,
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: D("c"), size: 5 },
  layers: [{ mediaType: layerType, digest: D("1"), size: 100 }],
});

function throwsCode(fn: () => unknown, code: string, ...parts: string[]): void {
  throws(fn, (e: unknown) => {
    if (!(e instanceof VolantError)) return false;
    equal(e.code, code, e.message);
    for (const p of parts) equal(e.message.includes(p), true, `${p} not in ${e.message}`);
    return true;
  });
}

Deno.test("parseManifestDocument() tells indexes from manifests by field, header or shape", () => {
  const m = manifest();
  equal(
    parseManifestDocument(enc({ ...m, mediaType: DOCKER_MANIFEST }), null, "x").kind,
    "manifest",
  );
  equal(parseManifestDocument(enc(m), OCI_MANIFEST, "x").kind, "manifest");
  equal(parseManifestDocument(enc(m), "application/json", "x").kind, "manifest");
  const idx = { schemaVersion: 2, manifests: [desc("a")] };
  const byHeader = parseManifestDocument(enc(idx), `${DOCKER_LIST}; charset=utf-8`, "x");
  equal(byHeader.kind, "index");
  equal(byHeader.mediaType, DOCKER_LIST);
  equal(parseManifestDocument(enc(idx), null, "x").kind, "index");
  equal(
    parseManifestDocument(enc({ ...idx, mediaType: OCI_INDEX }), OCI_MANIFEST, "x").kind,
    "index",
  );
});

Deno.test("parseManifestDocument() rejects schema 1, bad JSON, bad fields and foreign layers", () => {
  throwsCode(
    () => parseManifestDocument(enc({ schemaVersion: 1 }), null, "img"),
    "invalid_argument",
    "img",
    "schema 1",
  );
  throwsCode(
    () => parseManifestDocument(new TextEncoder().encode("{"), null, "img"),
    "invalid_argument",
    "not valid JSON",
  );
  const bad = { ...manifest(), config: { mediaType: "x", digest: "sha256:zz", size: -1 } };
  throwsCode(
    () => parseManifestDocument(enc(bad), null, "img"),
    "invalid_argument",
    "config.digest",
    "config.size",
  );
  throwsCode(
    () => parseManifestDocument(enc(manifest("application/vnd.in-toto+json")), null, "img"),
    "invalid_argument",
    "img layer 0",
    "application/vnd.in-toto+json",
  );
  throwsCode(
    () =>
      parseManifestDocument(enc({ ...manifest(), mediaType: "application/x-helm" }), null, "img"),
    "invalid_argument",
    "application/x-helm",
  );
});

Deno.test("selectPlatform() picks linux/amd64, preferring no variant", () => {
  const index = {
    schemaVersion: 2 as const,
    manifests: [
      desc("1", { os: "linux", architecture: "arm64", variant: "v8" }),
      desc("2", { os: "linux", architecture: "amd64", variant: "v3" }),
      desc("3", { os: "linux", architecture: "amd64" }),
    ],
  };
  equal(selectPlatform(index, "img").digest, D("3"));
  equal(selectPlatform({ ...index, manifests: index.manifests.slice(0, 2) }, "img").digest, D("2"));
});

Deno.test("selectPlatform() lists the platforms an image has when linux/amd64 is missing", () => {
  const index = {
    schemaVersion: 2 as const,
    manifests: [
      desc("1", { os: "linux", architecture: "arm64", variant: "v8" }),
      desc("2", { os: "linux", architecture: "arm", variant: "v7" }),
      desc("4", { os: "unknown", architecture: "unknown" }),
      desc("5"),
    ],
  };
  throwsCode(
    () => selectPlatform(index, "demo:1"),
    "invalid_argument",
    "demo:1",
    "no linux/amd64",
    "linux/arm64/v8, linux/arm/v7",
  );
});

Deno.test("parseImageConfig() accepts linux/amd64 and rejects other platforms", () => {
  const base = { rootfs: { type: "layers", diff_ids: [D("1")] } };
  equal(
    parseImageConfig(enc({ ...base, os: "linux", architecture: "amd64" }), "c").rootfs.diff_ids
      .length,
    1,
  );
  throwsCode(
    () =>
      parseImageConfig(
        enc({ ...base, os: "linux", architecture: "arm64", variant: "v8" }),
        "config of x",
      ),
    "invalid_argument",
    "config of x is for linux/arm64/v8",
  );
  throwsCode(() => parseImageConfig(enc({ os: "linux" }), "c"), "invalid_argument", "rootfs");
});

Deno.test("imageConfig() normalises unset and empty fields", () => {
  const rootfs = { type: "layers" as const, diff_ids: [] };
  deepEqual(imageConfig({ rootfs }), {
    entrypoint: null,
    cmd: null,
    env: [],
    workdir: null,
    user: null,
    exposed_ports: [],
  });
  deepEqual(
    imageConfig({
      rootfs,
      config: {
        Entrypoint: ["/docker-entrypoint.sh"],
        Cmd: ["nginx", "-g", "daemon off;"],
        Env: ["PATH=/usr/bin"],
        WorkingDir: "",
        User: "101:101",
        ExposedPorts: { "80/tcp": {}, "443/tcp": {}, "53/udp": {} },
      },
    }),
    {
      entrypoint: ["/docker-entrypoint.sh"],
      cmd: ["nginx", "-g", "daemon off;"],
      env: ["PATH=/usr/bin"],
      workdir: null,
      user: "101:101",
      exposed_ports: ["443/tcp", "53/udp", "80/tcp"],
    },
  );
});
