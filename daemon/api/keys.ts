/** Trusted signing keys: list, trust, remove. @module */
import { KeyList, KeyRecord, KeyTrustRequest } from "../../schema/mod.ts";
import { defineRoute, type Route } from "./route.ts";

/** `GET /api/v1/keys` */
export const listKeys: Route = defineRoute({
  method: "GET",
  path: "/api/v1/keys",
  operationId: "listKeys",
  summary: "List the keys plugin manifests may be signed with",
  status: 200,
  response: KeyList,
  handle: ({ deps }) => ({ keys: deps.plugins.keys() }),
});

/** `POST /api/v1/keys` */
export const trustKey: Route = defineRoute({
  method: "POST",
  path: "/api/v1/keys",
  operationId: "trustKey",
  summary: "Trust an ed25519 public key for plugin signatures",
  body: KeyTrustRequest,
  status: 201,
  response: KeyRecord,
  handle: ({ body, deps }) => deps.plugins.trustKey(body),
});

/** `DELETE /api/v1/keys/:key_id` */
export const untrustKey: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/keys/:key_id",
  operationId: "untrustKey",
  summary: "Stop trusting a key (plugins it signed no longer boot)",
  status: 200,
  response: KeyRecord,
  handle: ({ params, deps }) => deps.plugins.untrustKey(params.key_id!),
});
