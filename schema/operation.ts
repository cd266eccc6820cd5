/**
 * The shape of one API operation, declared once in `schema/operations/` without its handler:
 * id, HTTP method and path, input schemas (path parameters, query, body), output schema, success
 * status, the error codes it can return, who may call it, and its MCP tool (or why it has
 * none). volantd's route table and MCP server, the OpenAPI document and volar's typed client
 * are all derived from these declarations; the input of every transport goes through
 * {@linkcode parseOperationInput}, so REST, MCP and the client refuse bad input with the same
 * error.
 *
 * @module
 */
import { z } from "zod";
import { type ErrorCode, fromZodError, VolantError } from "./error.ts";

/** HTTP methods of the API; `ANY` is every method (the agent proxy passes them all on). */
export type OperationMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "ANY";

/**
 * Who may call an operation. The unix socket is trusted by its file mode; over TCP the bearer
 * token's scope decides:
 * - `read`: any token (GET operations; and the AG-UI run, a POST that checks each of its tool
 *   calls against the token like MCP does);
 * - `admin`: an admin token;
 * - `unix`: nobody over TCP, whatever the token (token management);
 * - `by_method`: `read` for GET, HEAD and OPTIONS, `admin` for every other method (the agent
 *   proxy).
 */
export type OperationAccess = "read" | "admin" | "unix" | "by_method";

/** How REST answers when it is not one JSON body of `response`. */
export interface OperationStream {
  /**
   * - `sse`: server-sent events, each event's data a `response`;
   * - `ndjson`: newline-delimited JSON, each line a `response`;
   * - `ndjson_progress`: with `?progress=ndjson`, progress lines then `{type: "done", …}`
   *   (without it, one JSON `response`);
   * - `websocket`: with `Upgrade: websocket`, a WebSocket (without it, one JSON `response`);
   * - `passthrough`: the answer of the workload or kestrel, status, type and body as they are.
   */
  kind: "sse" | "ndjson" | "ndjson_progress" | "websocket" | "passthrough";
  /** What the stream carries and when it ends. */
  description: string;
}

/** A body the daemon passes on unread (to kestrel): bytes of one of the accepted types. */
export interface OperationRawBody {
  /**
   * Media types it may have; `*∕*` takes any declared type but `text/plain` and the two form
   * types (a web page may send those cross-site without asking).
   */
  accepts: readonly string[];
  /** What it is (also the description of the MCP tool's `body` text field). */
  description: string;
}

/** The MCP tool an operation also is. */
export interface OperationTool {
  /** Tool name (`vm_list`). */
  tool: string;
  /** Human title. */
  title: string;
  /** Description for agents; default the operation's summary. */
  description?: string;
  /** The tool deletes something (an MCP annotation clients show). */
  destructive?: boolean;
  /** Input fields REST has and the tool has not (streaming switches such as `follow`). */
  omit?: readonly string[];
  /** Values the tool uses for absent fields where REST has none (bounded answers for agents). */
  defaults?: Readonly<Record<string, unknown>>;
  /**
   * The tool's answer when REST's is a stream or passed through: an `ndjson` answer becomes
   * `{lines: [...]}`, a `passthrough` one `{status, body}` (the body as text).
   */
  output?: z.core.$ZodType;
}

/** An operation that is no MCP tool, and why. */
export interface RestOnly {
  /** One sentence: why agents do not get it as a tool. */
  restOnly: string;
}

/** One operation of the API. */
export interface Operation {
  /** OpenAPI operationId; the key of the daemon's handler. */
  operationId: string;
  /** HTTP method. */
  method: OperationMethod;
  /** Path with `:param`s, and a final `*` for a passed-through rest (its parameter `path`). */
  path: string;
  /** One-line summary. */
  summary: string;
  /** Path parameters, one field per `:param` (and `path` for a final `*`). */
  params?: z.ZodObject;
  /** Query parameters (values arrive as strings over REST). */
  query?: z.ZodObject;
  /**
   * Request headers the operation reads (documented in the OpenAPI document; the handler reads
   * them itself, e.g. `Last-Event-ID`).
   */
  headers?: z.ZodObject;
  /** JSON request body. */
  body?: z.core.$ZodType;
  /** A body passed on unread instead of a JSON one. */
  rawBody?: OperationRawBody;
  /** Success status. */
  status: 200 | 201;
  /** Success answer (for a stream: each item). */
  response: z.core.$ZodType;
  /** How REST answers when it is not one JSON body. */
  stream?: OperationStream;
  /**
   * Error codes the operation itself can return; every operation can also return
   * {@linkcode COMMON_ERRORS}, and one with a body {@linkcode BODY_ERRORS}.
   */
  errors: readonly ErrorCode[];
  /** Who may call it. */
  access: OperationAccess;
  /** Its MCP tool, or why it has none. */
  mcp: OperationTool | RestOnly;
}

/** Errors any operation can return: the caller is not let in, or the daemon failed. */
export const COMMON_ERRORS: readonly ErrorCode[] = ["unauthenticated", "forbidden", "internal"];

/** Errors any operation with a request body can return besides. */
export const BODY_ERRORS: readonly ErrorCode[] = ["unsupported_media_type", "payload_too_large"];

/**
 * Declares an operation, keeping its literal types (so the handler table, the MCP tools and
 * the client are typed from it).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineOperation } from "./operation.ts";
 * const Ping = defineOperation({
 *   operationId: "ping",
 *   method: "GET",
 *   path: "/ping",
 *   summary: "Ping",
 *   status: 200,
 *   response: z.object({ ok: z.boolean() }),
 *   errors: [],
 *   access: "read",
 *   mcp: { restOnly: "A liveness probe" },
 * });
 * console.assert(Ping.operationId === "ping");
 * ```
 */
export function defineOperation<const O extends Operation>(op: O): O {
  return op;
}

/** Whether an operation is also an MCP tool. */
export function isTool(op: Operation): op is Operation & { mcp: OperationTool } {
  return "tool" in op.mcp;
}

type NoFields = Record<never, never>;
type InputOf<S> = S extends z.core.$ZodType ? z.input<S> : NoFields;
type OutputOf<S, Absent> = S extends z.core.$ZodType ? z.output<S> : Absent;

/** What a client passes as an operation's parameters: its path parameters and query fields. */
export type OperationParams<O extends Operation> =
  & InputOf<O extends { params: infer P } ? P : undefined>
  & InputOf<O extends { query: infer Q } ? Q : undefined>;

/** What a client sends as an operation's body (JSON), or `BodyInit` for a raw body. */
export type OperationBody<O extends Operation> = O extends { body: infer B extends z.core.$ZodType }
  ? z.input<B>
  : O extends { rawBody: OperationRawBody } ? BodyInit
  : undefined;

/** An operation's success answer, parsed. */
export type OperationOutput<O extends Operation> = z.output<O["response"]>;

/** An operation's input after validation: what its handler gets. */
export interface ParsedInput<O extends Operation> {
  /** Path parameters. */
  params: OutputOf<O extends { params: infer P } ? P : undefined, NoFields>;
  /** Query. */
  query: OutputOf<O extends { query: infer Q } ? Q : undefined, NoFields>;
  /** JSON body (undefined for operations without one). */
  body: OutputOf<O extends { body: infer B } ? B : undefined, undefined>;
}

/** An operation's input as it arrived, before validation. */
export interface RawInput {
  /** Path parameters (decoded). */
  params?: Record<string, unknown>;
  /** Query fields. */
  query?: Record<string, unknown>;
  /** The JSON body (undefined when there was none). */
  body?: unknown;
}

interface Issue {
  field: string;
  message: string;
}

function invalid(issues: Issue[]): VolantError {
  const text = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
  return new VolantError("invalid_argument", `Invalid input: ${text}`, { issues });
}

/**
 * Validates an operation's input with its schemas, whichever transport it came by: every
 * failing field of the path parameters, the query (named `query.<field>`) and the body in one
 * `invalid_argument` error.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineOperation, parseOperationInput } from "./operation.ts";
 * const Get = defineOperation({
 *   operationId: "getThing",
 *   method: "GET",
 *   path: "/things/:name",
 *   summary: "Get a thing",
 *   params: z.strictObject({ name: z.string().regex(/^[a-z]+$/, "lower-case letters") }),
 *   status: 200,
 *   response: z.object({}),
 *   errors: ["not_found"],
 *   access: "read",
 *   mcp: { restOnly: "An example" },
 * });
 * console.assert(parseOperationInput(Get, { params: { name: "web" } }).params.name === "web");
 * try {
 *   parseOperationInput(Get, { params: { name: "Web" } });
 * } catch (err) {
 *   console.assert((err as Error).message === "Invalid input: name: lower-case letters");
 * }
 * ```
 */
export function parseOperationInput<O extends Operation>(op: O, raw: RawInput): ParsedInput<O> {
  const issues: Issue[] = [];
  const part = (schema: z.core.$ZodType, value: unknown, prefix: string) => {
    const parsed = z.safeParse(schema, value);
    if (parsed.success) return parsed.data;
    issues.push(...(fromZodError(parsed.error, prefix).details!.issues as Issue[]));
    return undefined;
  };
  const params = op.params ? part(op.params, raw.params ?? {}, "") : {};
  const query = op.query ? part(op.query, raw.query ?? {}, "query") : {};
  const body = op.body ? part(op.body, raw.body, "") : undefined;
  if (issues.length > 0) throw invalid(issues);
  return { params, query, body } as ParsedInput<O>;
}

/** The names of an operation's path parameters, in path order. */
export function pathParams(op: Operation): string[] {
  const names = [...op.path.matchAll(/:([a-z_]+)/g)].map((m) => m[1]!);
  return op.path.endsWith("/*") ? [...names, "path"] : names;
}

/**
 * The input fields of an operation's MCP tool, as one strict object: its path parameters, its
 * query fields (less those the tool omits), its body's fields, and for a raw body a `body`
 * text field.
 */
export function toolInput(op: Operation): z.ZodObject {
  const omit = new Set(isTool(op) ? op.mcp.omit ?? [] : []);
  const query = Object.entries(op.query?.shape ?? {}).filter(([k]) => !omit.has(k));
  return z.strictObject({
    ...(op.params?.shape ?? {}),
    ...Object.fromEntries(query),
    ...((op.body as z.ZodObject | undefined)?.shape ?? {}),
    ...(op.rawBody
      ? { body: z.string().optional().describe(`${op.rawBody.description} (as text)`) }
      : {}),
  });
}

/** A tool call's arguments split into an operation's input, plus a raw body's text. */
export interface ToolInput extends RawInput {
  /** The `body` text field of an operation with a raw body. */
  text?: string;
}

/**
 * Splits a tool call's arguments into the operation's path parameters, query and body (the
 * tool's defaults filled in); an argument that is none of them (or one the tool omits) is an
 * `invalid_argument` error naming it, as an unknown body field is.
 *
 * @example
 * ```ts
 * import { splitToolArguments } from "./operation.ts";
 * import { WaitVm } from "./operations/mod.ts";
 * const input = splitToolArguments(WaitVm, { name: "web", state: "running" });
 * console.assert(input.params?.name === "web" && input.query?.state === "running");
 * ```
 */
export function splitToolArguments(op: Operation, args: Record<string, unknown>): ToolInput {
  const tool = isTool(op) ? op.mcp : undefined;
  const omit = new Set(tool?.omit ?? []);
  const params: Record<string, unknown> = {};
  const query: Record<string, unknown> = {};
  const body: Record<string, unknown> = {};
  const unknown: Issue[] = [];
  let text: string | undefined;
  for (const [key, value] of Object.entries({ ...tool?.defaults, ...args })) {
    if (value === undefined) continue;
    if (op.params !== undefined && key in op.params.shape) params[key] = value;
    else if (op.query !== undefined && key in op.query.shape && !omit.has(key)) {
      query[key] = value;
    } else if (op.body !== undefined) body[key] = value;
    else if (op.rawBody !== undefined && key === "body") {
      if (typeof value !== "string") {
        unknown.push({ field: "body", message: "expected a string" });
      } else text = value;
    } else unknown.push({ field: key, message: "unknown field" });
  }
  if (unknown.length > 0) throw invalid(unknown);
  return {
    params,
    query,
    ...(op.body === undefined ? {} : { body }),
    ...(text === undefined ? {} : { text }),
  };
}

/**
 * The path and query string of a call of `op`: path parameters filled in (each URL-encoded;
 * `path`, the passed-through rest, as it is), the other fields as the query (fields left
 * undefined are not sent).
 *
 * @example
 * ```ts
 * import { operationUrl } from "./operation.ts";
 * import { SetVmNetworkPolicy, WaitVm } from "./operations/mod.ts";
 * console.assert(
 *   operationUrl(SetVmNetworkPolicy, { name: "web" }) === "/api/v1/vms/web/network-policy",
 * );
 * console.assert(
 *   operationUrl(WaitVm, { name: "web", state: "running" }) ===
 *     "/api/v1/vms/web/wait?state=running",
 * );
 * ```
 */
export function operationUrl(op: Operation, values: Record<string, unknown>): string {
  const used = new Set<string>();
  const value = (key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`${op.operationId}: missing path parameter ${key}`);
    used.add(key);
    return String(v);
  };
  let path = op.path.replace(/:([a-z_]+)/g, (_, key: string) => encodeURIComponent(value(key)));
  if (path.endsWith("/*")) path = `${path.slice(0, -1)}${value("path").replace(/^\/+/, "")}`;
  const query = new URLSearchParams();
  for (const [key, v] of Object.entries(values)) {
    if (used.has(key) || v === undefined) continue;
    if (op.query === undefined || !(key in op.query.shape)) {
      throw new Error(`${op.operationId}: ${key} is neither a path parameter nor a query field`);
    }
    query.set(key, String(v));
  }
  return query.size > 0 ? `${path}?${query}` : path;
}
