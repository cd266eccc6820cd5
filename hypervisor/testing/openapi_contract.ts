/**
 * Checking requests and answers against a VMM's published API document (OpenAPI 3.0 for Cloud
 * Hypervisor, Swagger 2.0 for Firecracker), for the REST drivers' contract tests and their fake
 * VMMs. The document is read as it is; the adaptations to JSON Schema happen here:
 *
 * - `$ref`s into `components/schemas` or `definitions` resolve into one registered schema;
 * - OpenAPI 3.0 `nullable: true` becomes a `null` alternative;
 * - the integer formats (`int8` … `uint64`) check their ranges; other formats are annotations;
 * - keywords JSON Schema does not have (`example`, `discriminator`, `xml`, `x-*`, …) are dropped,
 *   as are siblings of a `$ref` (OpenAPI ignores them too);
 * - objects are closed by default: a property the document does not declare is an error.
 *   Firecracker's parser refuses unknown fields itself; for Cloud Hypervisor this catches a
 *   misspelt field the VMM would silently ignore (a `readOnly` that leaves a disk writable).
 *
 * @module
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parse as parseYaml } from "yaml";

/**
 * The path of an API document vendored in the repository, from `hypervisor/`:
 * `cloud_hypervisor/openapi/openapi.yaml`, `firecracker/openapi/openapi-v1.16.1.yaml`, … (each
 * folder's README.md says where the documents come from; its licence files are beside them).
 *
 * @example
 * ```ts
 * import { vendoredDocument } from "./openapi_contract.ts";
 * console.assert(vendoredDocument("firecracker/openapi/openapi.yaml").endsWith(
 *   "/hypervisor/firecracker/openapi/openapi.yaml",
 * ));
 * ```
 */
export function vendoredDocument(relative: string): string {
  return new URL(`../${relative}`, import.meta.url).pathname;
}

/**
 * The shared reference data the vendored documents were copied from: `$VOLANT_SHARED_DIR`, or
 * `shared/` beside the repository (absent in a fresh clone).
 */
export function sharedDir(): string {
  return Deno.env.get("VOLANT_SHARED_DIR") ??
    new URL("../../../shared", import.meta.url).pathname;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Keywords kept when converting a document schema to JSON Schema (draft-07). */
const KEPT = new Set([
  "type",
  "properties",
  "required",
  "items",
  "enum",
  "additionalProperties",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "allOf",
  "anyOf",
  "oneOf",
  "not",
  "format",
  "default",
  "description",
  "title",
  "readOnly",
  "writeOnly",
  "deprecated",
]);

/** Integer formats and their ranges (64-bit ones limited to what a JSON number holds exactly). */
const INT_FORMATS: Record<string, [number, number]> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

const DOC_ID = "openapi-document";

interface ConvertOptions {
  /** Close objects that do not say otherwise (`additionalProperties: false`). */
  closed: boolean;
}

function rewriteRef(ref: string): string {
  const m = ref.match(/^#\/(?:components\/schemas|definitions)\/(.+)$/);
  if (!m) throw new Error(`Unsupported $ref ${ref} (only local schema references are)`);
  return `${DOC_ID}#/definitions/${m[1]}`;
}

/** Converts one OpenAPI/Swagger schema object to JSON Schema (see the module doc). */
function convert(schema: Json, options: ConvertOptions): Json {
  if (!isObject(schema)) return schema;
  if (typeof schema.$ref === "string") return { $ref: rewriteRef(schema.$ref) };
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (!KEPT.has(key)) continue;
    if (key === "properties" && isObject(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, convert(v, options)]),
      );
    } else if ((key === "items" || key === "not") && isObject(value)) {
      out[key] = convert(value, options);
    } else if (key === "additionalProperties" && isObject(value)) {
      out[key] = convert(value, options);
    } else if ((key === "allOf" || key === "anyOf" || key === "oneOf") && Array.isArray(value)) {
      out[key] = value.map((v) => convert(v, options));
    } else if (key === "format") {
      if (typeof value === "string" && value in INT_FORMATS) out.format = value;
    } else {
      out[key] = value;
    }
  }
  if (schema.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  const hasProperties = isObject(out.properties);
  if (hasProperties && out.type === undefined) out.type = "object";
  if (options.closed && hasProperties && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  // Swagger 2.0 writes `type: integer` with `format: int64`; JSON Schema needs no more.
  return out;
}

/** A route of the document: method and full path template (base path included). */
export interface Operation {
  method: string;
  /** E.g. `/api/v1/vm.create` or `/drives/{drive_id}`. */
  path: string;
}

/** A request matched to the document. */
export interface RouteMatch {
  /** The path template as written in the document (without the base path). */
  template: string;
  /** Path parameters by name. */
  params: Record<string, string>;
  operation: JsonObject;
}

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

function describeError(e: ErrorObject): string {
  const at = e.instancePath === "" ? "(body)" : e.instancePath;
  const p = e.params as Record<string, unknown>;
  const detail = p.additionalProperty !== undefined
    ? `: ${String(p.additionalProperty)}`
    : p.allowedValues !== undefined
    ? `: ${(p.allowedValues as unknown[]).map(String).join("|")}`
    : "";
  return `${at} ${e.message ?? e.keyword}${detail}`;
}

/**
 * One API document, ready to check requests and answers.
 *
 * @example
 * ```ts
 * import { OpenApiContract } from "./openapi_contract.ts";
 * const doc = await OpenApiContract.loadVendored("firecracker/openapi/openapi.yaml");
 * console.log(doc.requestProblems("PUT", "/actions", { action_type: "InstanceStart" })); // []
 * ```
 */
export class OpenApiContract {
  /** Where the document was read from. */
  readonly path: string;
  /** `openapi-3` or `swagger-2`. */
  readonly kind: "openapi-3" | "swagger-2";
  /** `info.version` of the document. */
  readonly version: string;
  /** The path every route is under (`/api/v1`, or `` for `/`). */
  readonly basePath: string;
  readonly #doc: JsonObject;
  readonly #ajv: Ajv;
  readonly #validators = new Map<string, ValidateFunction>();

  private constructor(doc: JsonObject, path: string, options: ConvertOptions) {
    this.path = path;
    this.#doc = doc;
    if (typeof doc.openapi === "string" && doc.openapi.startsWith("3.")) {
      this.kind = "openapi-3";
      const server = Array.isArray(doc.servers) && isObject(doc.servers[0])
        ? String(doc.servers[0].url ?? "/")
        : "/";
      this.basePath = new URL(server, "http://localhost").pathname.replace(/\/+$/, "");
    } else if (doc.swagger === "2.0") {
      this.kind = "swagger-2";
      this.basePath = String(doc.basePath ?? "/").replace(/\/+$/, "");
    } else {
      throw new Error(`${path} is neither OpenAPI 3 nor Swagger 2.0`);
    }
    this.version = isObject(doc.info) ? String(doc.info.version ?? "") : "";
    const schemas = this.kind === "openapi-3"
      ? (isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : {})
      : (isObject(doc.definitions) ? doc.definitions : {});
    const definitions = Object.fromEntries(
      Object.entries(schemas).map(([name, s]) => [name, convert(s, options)]),
    );
    this.#ajv = new Ajv({ allErrors: true, strict: true });
    for (const [name, [min, max]] of Object.entries(INT_FORMATS)) {
      this.#ajv.addFormat(name, {
        type: "number",
        validate: (n: number) => Number.isInteger(n) && n >= min && n <= max,
      });
    }
    this.#ajv.addSchema({ $id: DOC_ID, definitions });
    this.#convertOptions = options;
  }

  readonly #convertOptions: ConvertOptions;

  /**
   * Reads and prepares the document at `path` (YAML or JSON). `closed: false` keeps objects
   * open as written.
   */
  static async load(
    path: string,
    options: { closed?: boolean } = {},
  ): Promise<OpenApiContract> {
    const doc = parseYaml(await Deno.readTextFile(path));
    if (!isObject(doc)) throw new Error(`${path} is not an API document`);
    return new OpenApiContract(doc, path, { closed: options.closed ?? true });
  }

  /** Loads the vendored document {@linkcode vendoredDocument}`(relative)`. */
  static loadVendored(
    relative: string,
    options: { closed?: boolean } = {},
  ): Promise<OpenApiContract> {
    return OpenApiContract.load(vendoredDocument(relative), options);
  }

  #paths(): JsonObject {
    return isObject(this.#doc.paths) ? this.#doc.paths : {};
  }

  /** Every (method, full path template) the document defines. */
  operations(): Operation[] {
    const out: Operation[] = [];
    for (const [template, item] of Object.entries(this.#paths())) {
      if (!isObject(item)) continue;
      for (const method of METHODS) {
        if (isObject(item[method])) {
          out.push({ method: method.toUpperCase(), path: `${this.basePath}${template}` });
        }
      }
    }
    return out;
  }

  /** The document's operation for `method` on the concrete `path` (base path included). */
  route(method: string, path: string): RouteMatch | null {
    if (!path.startsWith(`${this.basePath}/`)) return null;
    const local = path.slice(this.basePath.length);
    for (const [template, item] of Object.entries(this.#paths())) {
      if (!isObject(item)) continue;
      const operation = item[method.toLowerCase()];
      if (!isObject(operation)) continue;
      const names: string[] = [];
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(
        /\\?\{([^}]+)\\?\}/g,
        (_, name: string) => {
          names.push(name.replace(/\\/g, ""));
          return "([^/]+)";
        },
      );
      const m = local.match(new RegExp(`^${pattern}$`));
      if (!m) continue;
      const params = Object.fromEntries(
        names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? "")]),
      );
      return { template, params, operation };
    }
    return null;
  }

  #validator(key: string, schema: Json): ValidateFunction {
    let v = this.#validators.get(key);
    if (!v) {
      v = this.#ajv.compile(convert(schema, this.#convertOptions) as object);
      this.#validators.set(key, v);
    }
    return v;
  }

  #check(key: string, schema: Json, value: unknown, what: string): string[] {
    const validate = this.#validator(key, schema);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${what}: ${describeError(e)}`);
  }

  /** The names of the document's schemas (`components/schemas` or `definitions`). */
  schemaNames(): string[] {
    const doc = this.#doc;
    const schemas = this.kind === "openapi-3"
      ? (isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : {})
      : (isObject(doc.definitions) ? doc.definitions : {});
    return Object.keys(schemas);
  }

  /** Everything wrong with `value` as an instance of the document's schema `name`. */
  schemaProblems(name: string, value: unknown): string[] {
    const ref = this.kind === "openapi-3"
      ? `#/components/schemas/${name}`
      : `#/definitions/${name}`;
    return this.#check(`schema ${name}`, { $ref: ref }, value, name);
  }

  /** The request body schema of an operation and whether a body is required. */
  #requestBody(operation: JsonObject): { schema: Json; required: boolean } | null {
    if (this.kind === "openapi-3") {
      const body = operation.requestBody;
      if (!isObject(body)) return null;
      const content = isObject(body.content) ? body.content["application/json"] : undefined;
      if (!isObject(content)) return null;
      return { schema: content.schema ?? {}, required: body.required === true };
    }
    const params = Array.isArray(operation.parameters) ? operation.parameters : [];
    const body = params.find((p) => isObject(p) && p.in === "body");
    if (!isObject(body)) return null;
    return { schema: body.schema ?? {}, required: body.required === true };
  }

  /**
   * Everything wrong with sending `body` (undefined: no body) as `method path`: an operation
   * the document does not have, a missing or unexpected body, or a body its schema refuses.
   * Empty when the request is as documented.
   */
  requestProblems(method: string, path: string, body?: unknown): string[] {
    const what = `${method} ${path}`;
    const match = this.route(method, path);
    if (!match) return [`${what}: no such operation in ${this.path}`];
    const expected = this.#requestBody(match.operation);
    if (!expected) return body === undefined ? [] : [`${what}: the document takes no body here`];
    if (body === undefined) return expected.required ? [`${what}: a body is required`] : [];
    return this.#check(`req ${method} ${match.template}`, expected.schema, body, what);
  }

  /**
   * Everything wrong with answering `method path` with `status` and `body` (undefined: none):
   * a status the document does not list (and no `default`), or a body its schema refuses.
   */
  responseProblems(method: string, path: string, status: number, body?: unknown): string[] {
    const what = `${method} ${path} → ${status}`;
    const match = this.route(method, path);
    if (!match) return [`${method} ${path}: no such operation in ${this.path}`];
    const responses = isObject(match.operation.responses) ? match.operation.responses : {};
    const response = responses[String(status)] ?? responses.default;
    if (!isObject(response)) return [`${what}: status not documented`];
    const schema = this.kind === "openapi-3"
      ? (isObject(response.content) && isObject(response.content["application/json"])
        ? response.content["application/json"].schema
        : undefined)
      : response.schema;
    if (schema === undefined) {
      return body === undefined ? [] : [`${what}: the document has no body for this answer`];
    }
    if (body === undefined) return [`${what}: the document has a body for this answer`];
    return this.#check(`res ${method} ${match.template} ${status}`, schema, body, what);
  }
}
