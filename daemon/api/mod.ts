/**
 * volantd's REST API: a Hono app over a flat route table, validated with the zod schemas of
 * `schema/`, with its OpenAPI document built from the same schemas.
 *
 * @module
 */
export { createApp } from "./app.ts";
export { ALL_ROUTES, getOpenApi, ROUTES } from "./routes.ts";
export { type ApiDeps, defineRoute, type Method, type Route, type RouteInput } from "./route.ts";
export { buildOpenApi } from "./openapi.ts";
export { errorResponse, toVolantError } from "./errors.ts";
export {
  type AccessPolicy,
  type Caller,
  checkTcpListener,
  isLoopbackHost,
  type Listener,
} from "./access.ts";
