/**
 * API bearer tokens: create (the token is in this answer only), list, revoke. Served on the
 * unix socket only — whoever may reach it is trusted by file permissions; a TCP token cannot
 * mint or revoke tokens — and never MCP tools.
 *
 * @module
 */
import { defineOperation } from "../operation.ts";
import {
  TokenCreated,
  TokenCreateRequest,
  TokenList,
  TokenListQuery,
  TokenRecord,
} from "../token.ts";
import { ByToken } from "./_params.ts";

const noTool = "Token management stays on the unix socket: an agent holding a token must not " +
  "mint itself a successor or revoke others";

/** `GET /api/v1/tokens` */
export const ListTokens = defineOperation({
  operationId: "listTokens",
  method: "GET",
  path: "/api/v1/tokens",
  summary: "List API tokens (names, scopes, times; never the tokens). Unix socket only",
  query: TokenListQuery,
  status: 200,
  response: TokenList,
  errors: ["invalid_argument", "unsupported"],
  access: "unix",
  mcp: { restOnly: noTool },
});

/** `POST /api/v1/tokens` */
export const CreateToken = defineOperation({
  operationId: "createToken",
  method: "POST",
  path: "/api/v1/tokens",
  summary: "Create an API token for TCP listeners; the answer is the only copy of it. " +
    "Unix socket only",
  body: TokenCreateRequest,
  status: 201,
  response: TokenCreated,
  errors: ["invalid_argument", "already_exists", "unsupported"],
  access: "unix",
  mcp: { restOnly: noTool },
});

/** `DELETE /api/v1/tokens/:token` */
export const RevokeToken = defineOperation({
  operationId: "revokeToken",
  method: "DELETE",
  path: "/api/v1/tokens/:token",
  summary: "Revoke an API token by name or id (requests with it get 401 from now on). " +
    "Unix socket only",
  params: ByToken,
  status: 200,
  response: TokenRecord,
  errors: ["invalid_argument", "not_found", "unsupported"],
  access: "unix",
  mcp: { restOnly: noTool },
});
