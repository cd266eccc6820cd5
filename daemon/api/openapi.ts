/**
 * The OpenAPI 3.1 document, built from the table of operations (`schema/operations/`) and the
 * same zod schemas that validate requests (zod v4 `z.toJSONSchema`; JSON Schema 2020-12 is
 * OpenAPI 3.1's dialect). Each operation appears once, with its error codes by status, who may
 * call it (`x-volant-scope`) and its MCP tool (`x-volant-mcp-tool`) or why it has none
 * (`x-volant-rest-only`).
 *
 * @module
 */
import { z } from "zod";
import {
  ERROR_STATUS,
  ErrorBody,
  type ErrorCode,
  Health,
  ImageList,
  ImagePullRequest,
  ImageRecord,
  KeyList,
  KeyRecord,
  Manifest,
  PluginInstallRequest,
  PluginList,
  PluginRecord,
  RegistryCredential,
  RegistryCredentialList,
  TokenList,
  TokenRecord,
  VmCreateRequest,
  VmList,
  VmRecord,
} from "../../schema/mod.ts";
import { BODY_ERRORS, COMMON_ERRORS, type Operation } from "../../schema/operation.ts";

/** Schemas published under `components.schemas`, by name, with the form they are sent in. */
const COMPONENTS: ReadonlyArray<[string, z.core.$ZodType, "input" | "output"]> = [
  ["VmCreateRequest", VmCreateRequest, "input"],
  ["VmRecord", VmRecord, "output"],
  ["VmList", VmList, "output"],
  ["Health", Health, "output"],
  ["Manifest", Manifest, "input"],
  ["PluginInstallRequest", PluginInstallRequest, "input"],
  ["PluginRecord", PluginRecord, "output"],
  ["PluginList", PluginList, "output"],
  ["KeyRecord", KeyRecord, "output"],
  ["KeyList", KeyList, "output"],
  ["ImagePullRequest", ImagePullRequest, "input"],
  ["ImageRecord", ImageRecord, "output"],
  ["ImageList", ImageList, "output"],
  ["TokenRecord", TokenRecord, "output"],
  ["TokenList", TokenList, "output"],
  ["RegistryCredential", RegistryCredential, "output"],
  ["RegistryCredentialList", RegistryCredentialList, "output"],
  ["ErrorBody", ErrorBody, "output"],
];

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

/** The parameter objects of one field of a params or query schema. */
function fieldParameters(
  shape: z.ZodObject | undefined,
  where: "path" | "query" | "header",
): unknown[] {
  if (shape === undefined) return [];
  const schema = jsonSchema(shape, "input");
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(props).map(([name, { description, ...field }]) => ({
    name,
    in: where,
    required: where === "path" || required.has(name),
    ...(typeof description === "string" ? { description } : {}),
    schema: field,
  }));
}

/** The success responses of `op`, by status. */
function successes(op: Operation): Record<string, unknown> {
  const json = {
    description: "Success",
    content: jsonContent(schemaFor(op.response, "output")),
  };
  const stream = op.stream;
  if (stream === undefined) return { [String(op.status)]: json };
  const item = schemaFor(op.response, "output");
  switch (stream.kind) {
    case "sse":
      return {
        "200": {
          description: stream.description,
          content: { "text/event-stream": { schema: item } },
        },
      };
    case "ndjson":
      return {
        "200": {
          description: stream.description,
          content: { "application/x-ndjson": { schema: item } },
        },
      };
    case "passthrough":
      return { "200": { description: stream.description, content: { "*/*": { schema: {} } } } };
    case "websocket":
      return { [String(op.status)]: json, "101": { description: stream.description } };
    case "ndjson_progress":
      return {
        [String(op.status)]: json,
        ...(op.status === 200 ? {} : {
          "200": {
            description: stream.description,
            content: { "application/x-ndjson": { schema: { type: "object" } } },
          },
        }),
      };
  }
}

/** Every error code `op` can return, grouped by HTTP status. */
function failures(op: Operation): Record<string, unknown> {
  const codes = new Set<ErrorCode>([
    ...op.errors,
    ...COMMON_ERRORS,
    ...(op.body || op.rawBody ? BODY_ERRORS : []),
  ]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...byStatus.get(status) ?? [], code]);
  }
  const out: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[String(status)] = {
      description: `Error: ${list.join(", ")}`,
      content: jsonContent({ $ref: "#/components/schemas/ErrorBody" }),
    };
  }
  out.default = {
    description: "Error: `code` maps to the HTTP status through one table",
    content: jsonContent({ $ref: "#/components/schemas/ErrorBody" }),
  };
  return out;
}

/** The OpenAPI operation object of `op` (before its method is known). */
function operationObject(op: Operation): Record<string, unknown> {
  const out: Record<string, unknown> = {
    operationId: op.operationId,
    summary: op.summary,
    parameters: [
      ...fieldParameters(op.params, "path"),
      ...fieldParameters(op.query, "query"),
      ...fieldParameters(op.headers, "header"),
    ],
    responses: { ...successes(op), ...failures(op) },
    "x-volant-errors": [...op.errors],
  };
  if (op.body) {
    out.requestBody = { required: true, content: jsonContent(schemaFor(op.body, "input")) };
  } else if (op.rawBody) {
    out.requestBody = {
      required: false,
      description: op.rawBody.description,
      content: Object.fromEntries(op.rawBody.accepts.map((type) => [type, { schema: {} }])),
    };
  }
  if ("tool" in op.mcp) out["x-volant-mcp-tool"] = op.mcp.tool;
  else out["x-volant-rest-only"] = op.mcp.restOnly;
  return out;
}

/** Over TCP: the token scope a method of `op` needs, or the unix socket only. */
function scopeOf(op: Operation, method: string): string {
  switch (op.access) {
    case "unix":
      return "unix-socket-only";
    case "by_method":
      return method === "get" ? "read" : "admin";
    default:
      return op.access;
  }
}

/**
 * Builds the document.
 *
 * @example
 * ```ts
 * import { buildOpenApi } from "./openapi.ts";
 * import { OPERATIONS } from "../../schema/operations/mod.ts";
 * const doc = buildOpenApi(OPERATIONS, "0.1.0");
 * console.assert(doc.openapi === "3.1.0");
 * ```
 */
export function buildOpenApi(
  operations: readonly Operation[],
  version: string,
): { openapi: string; [key: string]: unknown } {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const path = op.path.replace(/:([A-Za-z_]+)/g, "{$1}").replace(/\/\*$/, "/{path}");
    const operation = operationObject(op);
    const methods = op.method === "ANY"
      ? ["get", "post", "put", "patch", "delete"]
      : [op.method.toLowerCase()];
    for (const [i, method] of methods.entries()) {
      // OpenAPI has no "any method": the first carries the operationId, the others a suffix.
      const id = i === 0 ? op.operationId : `${op.operationId}_${method}`;
      const entry = { ...operation, operationId: id, "x-volant-scope": scopeOf(op, method) };
      paths[path] = { ...paths[path], [method]: entry };
    }
  }
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, schema, io] of COMPONENTS) schemas[name] = jsonSchema(schema, io);
  return {
    openapi: "3.1.0",
    info: {
      title: "volantd",
      version,
      description: "Volant microVM daemon REST API (unix socket, optionally TCP). The same " +
        "operations are MCP tools at /mcp where x-volant-mcp-tool names one.",
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
