/**
 * The daemon itself: its health and this API's OpenAPI document.
 *
 * @module
 */
import { z } from "zod";
import { Health } from "../api.ts";
import { defineOperation } from "../operation.ts";

/** `GET /healthz` */
export const GetHealth = defineOperation({
  operationId: "getHealth",
  method: "GET",
  path: "/healthz",
  summary: "Daemon health",
  status: 200,
  response: Health,
  errors: [],
  access: "read",
  mcp: {
    restOnly: "A liveness probe for supervisors and volar doctor; MCP clients have ping",
  },
});

/** `GET /openapi.json` */
export const GetOpenApi = defineOperation({
  operationId: "getOpenApi",
  method: "GET",
  path: "/openapi.json",
  summary: "This API as an OpenAPI 3.1 document",
  status: 200,
  response: z.looseObject({ openapi: z.string() }),
  errors: [],
  access: "read",
  mcp: { restOnly: "The description of this API; MCP clients list the tools instead" },
});
