/**
 * Deployment operations: list, create, get, scale, update (rolling), delete, wait.
 *
 * @module
 */
import { z } from "zod";
import { defineOperation } from "../operation.ts";
import {
  DeploymentCreateRequest,
  DeploymentList,
  DeploymentRecord,
  DeploymentScaleRequest,
  DeploymentUpdateRequest,
} from "../deployment.ts";
import { ByDeployment } from "./_params.ts";

const sourceErrors = [
  "invalid_argument",
  "not_found",
  "invalid_state",
  "unsupported",
  "artifact_unavailable",
  "network_error",
] as const;

/** `GET /api/v1/deployments` */
export const ListDeployments = defineOperation({
  operationId: "listDeployments",
  method: "GET",
  path: "/api/v1/deployments",
  summary: "List deployments",
  status: 200,
  response: DeploymentList,
  errors: [],
  access: "read",
  mcp: {
    tool: "deployment_list",
    title: "List deployments",
    description: "Every deployment: desired and ready replicas, generation, status, members",
  },
});

/** `POST /api/v1/deployments` */
export const CreateDeployment = defineOperation({
  operationId: "createDeployment",
  method: "POST",
  path: "/api/v1/deployments",
  summary: "Create a deployment: N replicas (<name>-1 … <name>-N) of a plugin or image, kept " +
    "at that count (returns at once; deployment_wait for ready)",
  body: DeploymentCreateRequest,
  status: 201,
  response: DeploymentRecord,
  errors: [...sourceErrors, "already_exists"],
  access: "admin",
  mcp: {
    tool: "deployment_create",
    title: "Create a deployment",
    description: "Create N replicas of a plugin's workload or an OCI image, each its own VM " +
      "with its own address, replaced when it crashes or stays unhealthy",
  },
});

/** `GET /api/v1/deployments/:name` */
export const GetDeployment = defineOperation({
  operationId: "getDeployment",
  method: "GET",
  path: "/api/v1/deployments/:name",
  summary: "Get a deployment with its replicas (state, health, address, generation)",
  params: ByDeployment,
  status: 200,
  response: DeploymentRecord,
  errors: ["invalid_argument", "not_found"],
  access: "read",
  mcp: { tool: "deployment_get", title: "Show a deployment" },
});

/** `POST /api/v1/deployments/:name/scale` */
export const ScaleDeployment = defineOperation({
  operationId: "scaleDeployment",
  method: "POST",
  path: "/api/v1/deployments/:name/scale",
  summary: "Set a deployment's desired replicas (new ones take the lowest free indices; the " +
    "highest go first)",
  params: ByDeployment,
  body: DeploymentScaleRequest,
  status: 200,
  response: DeploymentRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "already_exists"],
  access: "admin",
  mcp: { tool: "deployment_scale", title: "Scale a deployment" },
});

/** `PATCH /api/v1/deployments/:name` */
export const UpdateDeployment = defineOperation({
  operationId: "updateDeployment",
  method: "PATCH",
  path: "/api/v1/deployments/:name",
  summary: "Change a deployment's template (a rolling update: replicas are replaced, at most " +
    "max_unavailable at a time, each new one healthy before the next old one goes) or its " +
    "max_unavailable",
  params: ByDeployment,
  body: DeploymentUpdateRequest,
  status: 200,
  response: DeploymentRecord,
  errors: sourceErrors,
  access: "admin",
  mcp: { tool: "deployment_update", title: "Update a deployment (rolling)" },
});

/** `DELETE /api/v1/deployments/:name` */
export const DeleteDeployment = defineOperation({
  operationId: "deleteDeployment",
  method: "DELETE",
  path: "/api/v1/deployments/:name",
  summary: "Delete a deployment and its replicas; returns its last record once they are gone",
  params: ByDeployment,
  status: 200,
  response: DeploymentRecord,
  errors: ["invalid_argument", "not_found", "timeout"],
  access: "admin",
  mcp: {
    tool: "deployment_delete",
    title: "Delete a deployment",
    description: "Delete every replica, then the deployment",
    destructive: true,
  },
});

/** `GET /api/v1/deployments/:name/wait` */
export const WaitDeployment = defineOperation({
  operationId: "waitDeployment",
  method: "GET",
  path: "/api/v1/deployments/:name/wait",
  summary: "Wait until every replica is healthy at the current generation (invalid_state when " +
    "a replica crash-loops or actions keep failing; timeout when not in time)",
  params: ByDeployment,
  query: z.strictObject({
    timeout_ms: z.coerce.number().int().min(0).max(600_000).default(120_000),
  }),
  status: 200,
  response: DeploymentRecord,
  errors: ["invalid_argument", "not_found", "invalid_state", "timeout", "daemon_unreachable"],
  access: "read",
  mcp: {
    tool: "deployment_wait",
    title: "Wait for a deployment",
    description: "Wait until every replica is healthy at the current generation, up to timeout_ms",
  },
});
