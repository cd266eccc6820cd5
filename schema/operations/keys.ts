/**
 * Trusted signing keys: list, trust, untrust. Which signatures the daemon trusts is an
 * operator's decision, so none of these is an MCP tool.
 *
 * @module
 */
import { defineOperation } from "../operation.ts";
import { KeyList, KeyRecord, KeyTrustRequest } from "../plugin.ts";
import { ByKey } from "./_params.ts";

const operatorsOnly = "Which plugin signatures volantd trusts is an operator's decision";

/** `GET /api/v1/keys` */
export const ListKeys = defineOperation({
  operationId: "listKeys",
  method: "GET",
  path: "/api/v1/keys",
  summary: "List the keys plugin manifests may be signed with",
  status: 200,
  response: KeyList,
  errors: [],
  access: "read",
  mcp: { restOnly: operatorsOnly },
});

/** `POST /api/v1/keys` */
export const TrustKey = defineOperation({
  operationId: "trustKey",
  method: "POST",
  path: "/api/v1/keys",
  summary: "Trust an ed25519 public key for plugin signatures",
  body: KeyTrustRequest,
  status: 201,
  response: KeyRecord,
  errors: ["invalid_argument", "already_exists"],
  access: "admin",
  mcp: { restOnly: operatorsOnly },
});

/** `DELETE /api/v1/keys/:key_id` */
export const UntrustKey = defineOperation({
  operationId: "untrustKey",
  method: "DELETE",
  path: "/api/v1/keys/:key_id",
  summary: "Stop trusting a key (plugins it signed no longer boot)",
  params: ByKey,
  status: 200,
  response: KeyRecord,
  errors: ["invalid_argument", "not_found"],
  access: "admin",
  mcp: { restOnly: operatorsOnly },
});
