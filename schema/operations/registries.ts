/**
 * Registry credentials kept by volantd for image pulls: log in (store), list (hosts and user
 * names only), log out. Admin scope on TCP; passwords never come back; never MCP tools.
 *
 * @module
 */
import { defineOperation } from "../operation.ts";
import { RegistryCredential, RegistryCredentialList, RegistryLoginRequest } from "../registry.ts";
import { ByRegistry } from "./_params.ts";

const noTool = "Registry passwords go to volantd from an operator, never through an agent";

/** `GET /api/v1/registries` */
export const ListRegistries = defineOperation({
  operationId: "listRegistries",
  method: "GET",
  path: "/api/v1/registries",
  summary: "Registries volantd has credentials for: hosts and user names, never passwords",
  status: 200,
  response: RegistryCredentialList,
  errors: ["unsupported"],
  access: "admin",
  mcp: { restOnly: noTool },
});

/** `POST /api/v1/registries` */
export const LoginRegistry = defineOperation({
  operationId: "loginRegistry",
  method: "POST",
  path: "/api/v1/registries",
  summary: "Store (or replace) a user name and password for a registry; image pulls use them " +
    "before the daemon's ~/.docker/config.json",
  body: RegistryLoginRequest,
  status: 201,
  response: RegistryCredential,
  errors: ["invalid_argument", "unsupported"],
  access: "admin",
  mcp: { restOnly: noTool },
});

/** `DELETE /api/v1/registries/:host` */
export const LogoutRegistry = defineOperation({
  operationId: "logoutRegistry",
  method: "DELETE",
  path: "/api/v1/registries/:host",
  summary: "Forget the credentials for a registry host",
  params: ByRegistry,
  status: 200,
  response: RegistryCredential,
  errors: ["invalid_argument", "not_found", "unsupported"],
  access: "admin",
  mcp: { restOnly: noTool },
});
