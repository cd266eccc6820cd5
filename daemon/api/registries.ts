/**
 * Registry credentials kept by volantd for image pulls: log in (store), list (hosts and user
 * names only), log out. Admin scope on TCP; passwords never come back. Not offered as MCP tools.
 *
 * @module
 */
import {
  RegistryCredential,
  RegistryCredentialList,
  RegistryLoginRequest,
  VolantError,
} from "../../schema/mod.ts";
import type { RegistryCredentialService } from "../services/registries.ts";
import { type ApiDeps, defineRoute, type Route } from "./route.ts";

function registriesOf(deps: ApiDeps): RegistryCredentialService {
  if (!deps.registries) {
    throw new VolantError("unsupported", "This volantd keeps no registry credentials");
  }
  return deps.registries;
}

/** `GET /api/v1/registries` */
export const listRegistries: Route = defineRoute({
  method: "GET",
  path: "/api/v1/registries",
  operationId: "listRegistries",
  summary: "Registries volantd has credentials for: hosts and user names, never passwords",
  scope: "admin",
  status: 200,
  response: RegistryCredentialList,
  handle: async ({ deps }) => ({ registries: await registriesOf(deps).list() }),
});

/** `POST /api/v1/registries` */
export const loginRegistry: Route = defineRoute({
  method: "POST",
  path: "/api/v1/registries",
  operationId: "loginRegistry",
  summary: "Store (or replace) a user name and password for a registry; image pulls use them " +
    "before the daemon's ~/.docker/config.json",
  body: RegistryLoginRequest,
  status: 201,
  response: RegistryCredential,
  handle: ({ deps, body }) => registriesOf(deps).login(body),
});

/** `DELETE /api/v1/registries/:host` */
export const logoutRegistry: Route = defineRoute({
  method: "DELETE",
  path: "/api/v1/registries/:host",
  operationId: "logoutRegistry",
  summary: "Forget the credentials for a registry host",
  status: 200,
  response: RegistryCredential,
  handle: ({ deps, params }) => registriesOf(deps).logout(params.host!),
});
