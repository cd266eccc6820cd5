// Tests of the OpenAPI checker (hypervisor/testing/openapi_contract.ts) the REST drivers'
// contract tests rest on: if it passed everything, those tests would prove nothing.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { OpenApiContract } from "../testing/openapi_contract.ts";

async function withDoc(yaml: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-openapi-" });
  try {
    await Deno.writeTextFile(`${dir}/doc.yaml`, yaml);
    await fn(`${dir}/doc.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const OPENAPI3 = `
openapi: 3.0.1
info: { title: t, version: 9.9.9 }
servers: [{ url: http://localhost/api/v1 }]
paths:
  /thing.put:
    put:
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Thing" }
      responses:
        204: { description: ok }
  /thing.get:
    get:
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Thing" }
  /items/{item_id}:
    get:
      responses:
        200: { description: ok }
components:
  schemas:
    Thing:
      type: object
      required: [size]
      properties:
        size: { type: integer, format: uint8 }
        big: { type: integer, format: int64 }
        note: { type: string, nullable: true, example: "hi", x-vendor: 1 }
        mode: { $ref: "#/components/schemas/Mode", description: "ignored sibling" }
        map:
          type: object
          additionalProperties: { type: integer }
    Mode:
      type: string
      enum: [On, Off]
`;

Deno.test("OpenApiContract converts OpenAPI 3.0 schemas for validation", async () => {
  await withDoc(OPENAPI3, async (path) => {
    const doc = await OpenApiContract.load(path);
    equal(doc.kind, "openapi-3");
    equal(doc.basePath, "/api/v1");
    equal(doc.version, "9.9.9");
    deepEqual(doc.operations(), [
      { method: "PUT", path: "/api/v1/thing.put" },
      { method: "GET", path: "/api/v1/thing.get" },
      { method: "GET", path: "/api/v1/items/{item_id}" },
    ]);
    const put = (body?: unknown) => doc.requestProblems("PUT", "/api/v1/thing.put", body);
    deepEqual(put({ size: 255, note: null, mode: "On", map: { a: 1 } }), []);
    deepEqual(put({ size: 1, note: "text", big: 2 ** 53 - 1 }), []);
    match(put({ size: 256 }).join(), /\/size must match format "uint8"/);
    match(put({ size: -1 }).join(), /\/size must match format "uint8"/);
    match(put({ size: 1, big: 2 ** 60 }).join(), /\/big must match format "int64"/);
    match(
      put({ size: 1, mode: "on" }).join(),
      /\/mode must be equal to one of the allowed values: On\|Off/,
    );
    match(put({ size: 1, extra: true }).join(), /must NOT have additional properties: extra/);
    match(put({ size: 1, map: { a: "x" } }).join(), /\/map\/a must be integer/);
    match(put({}).join(), /must have required property 'size'/);
    match(put().join(), /a body is required/);
    match(doc.requestProblems("PUT", "/thing.put", { size: 1 }).join(), /no such operation/);
    match(doc.requestProblems("GET", "/api/v1/thing.get", {}).join(), /takes no body/);
    deepEqual(doc.route("GET", "/api/v1/items/a%20b")?.params, { item_id: "a b" });
    equal(doc.route("GET", "/api/v1/items/a/b"), null);
    deepEqual(doc.responseProblems("GET", "/api/v1/thing.get", 200, { size: 3 }), []);
    match(doc.responseProblems("GET", "/api/v1/thing.get", 200, { size: "3" }).join(), /integer/);
    match(doc.responseProblems("GET", "/api/v1/thing.get", 500).join(), /status not documented/);
    deepEqual(doc.responseProblems("PUT", "/api/v1/thing.put", 204), []);
    match(doc.responseProblems("PUT", "/api/v1/thing.put", 204, {}).join(), /no body/);
    deepEqual(doc.schemaNames(), ["Thing", "Mode"]);
    deepEqual(doc.schemaProblems("Mode", "Off"), []);
  });
});

Deno.test("OpenApiContract keeps objects open when asked", async () => {
  await withDoc(OPENAPI3, async (path) => {
    const open = await OpenApiContract.load(path, { closed: false });
    deepEqual(open.requestProblems("PUT", "/api/v1/thing.put", { size: 1, extra: true }), []);
  });
});

const SWAGGER2 = `
swagger: "2.0"
info: { title: t, version: 1.0.0 }
basePath: "/"
paths:
  /drives/{drive_id}:
    put:
      parameters:
        - { name: drive_id, in: path, required: true, type: string }
        - { name: body, in: body, required: true, schema: { $ref: "#/definitions/Drive" } }
      responses:
        204: { description: ok }
        default: { description: error, schema: { $ref: "#/definitions/Error" } }
definitions:
  Drive:
    type: object
    required: [drive_id]
    properties:
      drive_id: { type: string }
      ip: { type: string, format: "169.254.([0-9]+)" }
  Error:
    type: object
    properties:
      fault_message: { type: string, readOnly: true }
`;

Deno.test("OpenApiContract reads Swagger 2.0 body parameters and default answers", async () => {
  await withDoc(SWAGGER2, async (path) => {
    const doc = await OpenApiContract.load(path);
    equal(doc.kind, "swagger-2");
    equal(doc.basePath, "");
    deepEqual(doc.route("PUT", "/drives/root")?.params, { drive_id: "root" });
    deepEqual(doc.requestProblems("PUT", "/drives/root", { drive_id: "root", ip: "x" }), []);
    match(doc.requestProblems("PUT", "/drives/root", { id: "root" }).join(), /drive_id/);
    deepEqual(doc.responseProblems("PUT", "/drives/root", 400, { fault_message: "no" }), []);
    match(doc.responseProblems("PUT", "/drives/root", 400, { fault: "no" }).join(), /fault/);
  });
});

const VENDORED = [
  "cloud_hypervisor/openapi/openapi.yaml",
  "cloud_hypervisor/openapi/openapi-v53.0.yaml",
  "firecracker/openapi/openapi.yaml",
  "firecracker/openapi/openapi-v1.16.1.yaml",
];

Deno.test({
  name: "OpenApiContract converts every schema of the vendored API documents",
  fn: async () => {
    for (const name of VENDORED) {
      const doc = await OpenApiContract.loadVendored(name);
      const schemas = doc.schemaNames();
      ok(schemas.length > 20, `${name} has its schemas`);
      for (const schema of schemas) {
        // Compiles under ajv's strict mode (throws otherwise); no schema accepts a symbol.
        ok(doc.schemaProblems(schema, Symbol("x")).length > 0, `${name}: ${schema}`);
      }
    }
  },
});
