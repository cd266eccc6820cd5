/**
 * What volantd adds to the table of operations (`schema/operations/`): a handler per
 * operationId, and the dependencies handlers use. A handler gets its operation's input already
 * validated (by the REST edge or the MCP server, with the same schemas and errors), calls a
 * service, and returns the answer; it translates and does nothing else.
 *
 * @module
 */
import type { Acceleration } from "../../schema/mod.ts";
import type { Logger } from "../log.ts";
import type {
  DeploymentService,
  ImageService,
  PluginService,
  RegistryCredentialService,
  TokenService,
  VmService,
} from "../services/mod.ts";
import type { AccessPolicy, Caller } from "./access.ts";
import type { Connect } from "../kestrel/mod.ts";
import type { z } from "zod";
import type { Operation, ParsedInput } from "../../schema/operation.ts";
import type { OperationById, OperationId } from "../../schema/operations/mod.ts";

/** What handlers may use. */
export interface ApiDeps {
  /** The VM service requests act on. */
  service: VmService;
  /** The plugin registry and trusted keys. */
  plugins: PluginService;
  /** Deployments (absent: none are listed, the other deployment routes answer `unsupported`). */
  deployments?: DeploymentService;
  /** OCI images (absent: the image routes answer `unsupported`). */
  images?: ImageService;
  /** How the kestrel client connects to a VM's kestrel (tests); default TCP to its address. */
  kestrelConnect?: Connect;
  /** Daemon version for `/healthz`. */
  version: string;
  /** The hypervisor as probed at start-up. */
  hypervisor: {
    name: string;
    version: string | null;
    kvm: boolean;
    acceleration: Acceleration;
  };
  /** Access and error log. */
  logger: Logger;
  /** JSON request bodies larger than this are refused with 413 (`api.max_body_bytes`). */
  maxBodyBytes?: number;
  /**
   * Who may call (Host names, TCP tokens); absent: loopback and unix-socket names only, and TCP
   * requests are refused.
   */
  access?: AccessPolicy;
  /** API tokens (absent: the token routes answer `unsupported`). */
  tokens?: TokenService;
  /** Registry credentials for image pulls (absent: the registry routes answer `unsupported`). */
  registries?: RegistryCredentialService;
}

/** A handler's input: the operation's validated input, and where the call comes from. */
export type HandlerInput<O extends Operation> = ParsedInput<O> & {
  /** The app's dependencies. */
  deps: ApiDeps;
  /**
   * The request: over REST the HTTP request itself (a raw body still unread); over MCP one
   * standing for the tool call (its method, path, query and raw body).
   */
  request: Request;
  /** Who is calling (listener, token, scope), as checked before the handler runs. */
  caller: Caller;
};

/**
 * Does an operation's work: the answer is sent as JSON with the operation's status (a
 * `Response` is sent as it is: streams, passed-through answers). Errors are VolantErrors.
 */
export type Handler<O extends Operation> = (
  input: HandlerInput<O>,
) => z.input<O["response"]> | Response | Promise<z.input<O["response"]> | Response>;

/** One handler per operation of the table, by operationId. */
export type Handlers = { [K in OperationId]: Handler<OperationById<K>> };

/** A handler's input as routes carry it, for any operation. */
export interface RouteInput {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
  deps: ApiDeps;
  request: Request;
  caller: Caller;
}

/** An operation of the table with its handler: one REST route (and MCP tool, if it is one). */
export interface Route {
  /** The operation. */
  op: Operation;
  /** Its handler. */
  handle(input: RouteInput): unknown;
}
