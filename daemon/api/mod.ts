/**
 * volantd's REST API: a Hono app over the flat route table (the operations of
 * `schema/operations/`, each with its handler), validated with the zod schemas of `schema/`,
 * with its OpenAPI document built from the same table.
 *
 * @module
 */
export { createApp } from "./app.ts";
export { HANDLERS, ROUTES } from "./routes.ts";
export {
  type ApiDeps,
  type Handler,
  type HandlerInput,
  type Handlers,
  type Route,
  type RouteInput,
} from "./route.ts";
export { buildOpenApi } from "./openapi.ts";
export { errorResponse, toVolantError } from "./errors.ts";
export {
  type AccessPolicy,
  type Caller,
  checkTcpListener,
  isLoopbackHost,
  type Listener,
} from "./access.ts";
