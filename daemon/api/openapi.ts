/**
 * The OpenAPI 3.1 document, built from the route table and the same zod schemas that
 * validate requests (zod v4 `z.toJSONSchema`; JSON Schema 2020-12 is OpenAPI 3.1's dialect).
 *
 * @module
 */
import { z } from "zod";
import {
  ErrorBody,
  Health,
  KeyList,
  KeyRecord,
  Manifest,
  PluginInstallRequest,
  PluginList,
  PluginRecord,
  VmCreateRequest,
  VmList,
  VmName,
  VmRecord,
} from "../../schema/mod.ts";
import type { Route } from "./route.ts";

/** Schemas published under `components.schemas`, by name. */
const COMPONENTS: ReadonlyArray<[string, z.core.$ZodType]> = [
  ["VmCreateRequest", VmCreateRequest],
  ["VmRecord", VmRecord],
  ["VmList", VmList],
  ["Health", Health],
  ["Manifest", Manifest],
  ["PluginInstallRequest", PluginInstallRequest],
  ["PluginRecord", PluginRecord],
  ["PluginList", PluginList],
  ["KeyRecord", KeyRecord],
  ["KeyList", KeyList],
  ["ErrorBody", ErrorBody],
];

/** Schemas of path parameters, by name. */
const PATH_PARAMS: Readonly<Record<string, z.core.$ZodType>> = {
  name: VmName,
  plugin: VmName,
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
  action: z.string(),
  token: z.string().describe("A token's name or id"),
  host: z.string().describe("A registry host[:port]"),
};

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.core.$ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" });
  return rest;
}

function schemaFor(schema: z.core.$ZodType, io: "input" | "output"): JsonSchema {
  const named = COMPONENTS.find(([, s]) => s === schema);
  return named ? { $ref: `#/components/schemas/${named[0]}` } : jsonSchema(schema, io);
}

function jsonContent(schema: JsonSchema): Record<string, unknown> {
  return { "application/json": { schema } };
}

function parameters(route: Route): unknown[] {
  const out: unknown[] = [];
  for (const match of route.path.matchAll(/:([A-Za-z_]+)/g)) {
    const name = match[1]!;
    const schema = PATH_PARAMS[name] ?? z.string();
    out.push({ name, in: "path", required: true, schema: jsonSchema(schema, "input") });
  }
  if (route.path.endsWith("/*")) {
    out.push({
      name: "path",
      in: "path",
      required: true,
      description: "The rest of the path, passed through",
      schema: { type: "string" },
    });
  }
  if (route.query) {
    const q = jsonSchema(route.query, "input");
    const props = (q.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((q.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      out.push({ name, in: "query", required: required.has(name), schema });
    }
  }
  return out;
}

/**
 * Builds the document.
 *
 * @example
 * ```ts
 * import { buildOpenApi } from "./openapi.ts";
 * import { ROUTES } from "./routes.ts";
 * const doc = buildOpenApi(ROUTES, "0.1.0");
 * console.assert(doc.openapi === "3.1.0");
 * ```
 */
export function buildOpenApi(
  routes: readonly Route[],
  version: string,
): { openapi: string; [key: string]: unknown } {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z_]+)/g, "{$1}").replace(/\/\*$/, "/{path}");
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      parameters: parameters(route),
      responses: {
        [String(route.status)]: {
          description: "Success",
          content: jsonContent(schemaFor(route.response, "output")),
        },
        default: {
          description: "Error: `code` maps to the HTTP status through one table",
          content: jsonContent({ $ref: "#/components/schemas/ErrorBody" }),
        },
      },
    };
    if (route.body) {
      operation.requestBody = {
        required: true,
        content: jsonContent(schemaFor(route.body, "input")),
      };
    }
    const methods = route.method === "ALL"
      ? ["get", "post", "put", "patch", "delete"]
      : [route.method.toLowerCase()];
    for (const [i, method] of methods.entries()) {
      const op: Record<string, unknown> = i === 0
        ? { ...operation }
        : { ...operation, operationId: `${route.operationId}_${method}` };
      // Over TCP: the token scope it needs (GET: read), or the unix socket only.
      op["x-volant-scope"] = route.unixOnly
        ? "unix-socket-only"
        : route.scope ?? (method === "get" ? "read" : "admin");
      paths[path] = { ...paths[path], [method]: op };
    }
  }
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, schema] of COMPONENTS) {
    schemas[name] = jsonSchema(
      schema,
      ["VmCreateRequest", "PluginInstallRequest", "Manifest"].includes(name) ? "input" : "output",
    );
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "volantd",
      version,
      description: "Volant microVM daemon REST API (unix socket, optionally TCP).",
    },
    servers: [{ url: "http://volant", description: "unix socket /run/volant/volantd.sock" }],
    // The unix socket needs no token; a TCP listener (api.tcp) needs a bearer token.
    security: [{}, { bearer: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "volant_<id>_<secret>, from volar tokens create (TCP listeners only)",
        },
      },
    },
  };
}
