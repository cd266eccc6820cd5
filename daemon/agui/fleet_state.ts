/**
 * The fleet's state as AG-UI runs share it with front-ends: `{vms, deployments}`, in the JSON
 * form the REST API answers (`GET /api/v1/vms` under `vms`).
 *
 * @module
 */
import type { DeploymentRecord, VmRecord } from "../../schema/mod.ts";
import type { ApiDeps } from "../api/route.ts";

/** The fleet's state: every VM and every deployment, as REST answers them. */
export interface FleetState {
  /** Every VM, as `GET /api/v1/vms` lists them. */
  vms: VmRecord[];
  /** Every deployment, as `GET /api/v1/deployments` lists them (none without the service). */
  deployments: DeploymentRecord[];
}

/**
 * The fleet's state now, as JSON (what a client that parses the REST answers holds: fields
 * left undefined are absent).
 *
 * @example
 * ```ts ignore
 * import { fleetState } from "./fleet_state.ts";
 * const state = fleetState(deps);
 * console.log(state.vms.length, state.deployments.length);
 * ```
 */
export function fleetState(deps: ApiDeps): FleetState {
  const state: FleetState = {
    vms: deps.service.list(),
    deployments: deps.deployments?.list() ?? [],
  };
  return JSON.parse(JSON.stringify(state)) as FleetState;
}
