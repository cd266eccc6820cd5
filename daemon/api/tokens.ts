/**
 * API bearer tokens: create (the token is in this answer only), list, revoke. Served on the
 * unix socket only — whoever may reach it is trusted by file permissions; a TCP token cannot
 * mint or revoke tokens — and not offered as MCP tools.
 *
 * @module
 */
import {
  TokenCreated,
  TokenCreateRequest,
  TokenList,
  TokenListQuery,
  TokenRecord,
  VolantError,
} from "../../schema/mod.ts";
import type { TokenService } from "../services/tokens.ts";
import { type ApiDeps, defineRoute, type Route } from "./route.ts";

function tokensOf(deps: ApiDeps): TokenService {
  if (!deps.tokens) throw new VolantError("unsupported", "This volantd keeps no API tokens");
  return deps.tokens;
}

/** `GET /api/v1/tokens` */
export const listTokens: Route = defineRoute({
  method: "GET",
  path: "/api/v1/tokens",
  operationId: "listTokens",
  summary: "List API tokens (names, scopes, times; never the tokens). Unix socket only",
  query: TokenListQuery,
  unixOnly: true,
  status: 200,
  response: TokenList,
  handle: ({ deps, query }) => ({
    tokens: tokensOf(deps).list(query.all === "1" || query.all === "true"),
  }),
});

/** `POST /api/v1/tokens` */
export const createToken: Route = defineRoute({
  method: "POST",
  path: "/api/v1/tokens",
  operationId: "createToken",
  summary: "Create an API token for TCP listeners; the answer is the only copy of it. " +
    "Unix socket only",
  body: TokenCreateRequest,
  unixOnly: true,
  status: 201,
  response: TokenCreated,
  handle: ({ deps, body }) => tokensOf(deps).create(body),
});

/** `DELETE /api/v1/tokens/:token` */
export const revokeToken: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/tokens/:token",
  operationId: "revokeToken",
  summary: "Revoke an API token by name or id (requests with it get 401 from now on). " +
    "Unix socket only",
  unixOnly: true,
  status: 200,
  response: TokenRecord,
  handle: ({ deps, params }) => tokensOf(deps).revoke(params.token!),
});
