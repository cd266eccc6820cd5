/** `GET /healthz`. @module */
import { Health, HypervisorName } from "../../schema/mod.ts";
import { defineRoute, type Route } from "./route.ts";

/** `GET /healthz`: daemon version, hypervisor and VM count. */
export const getHealth: Route = defineRoute({
  method: "GET",
  path: "/healthz",
  operationId: "getHealth",
  summary: "Daemon health",
  status: 200,
  response: Health,
  handle: ({ deps }): Health => ({
    status: "ok",
    version: deps.version,
    hypervisor: {
      name: HypervisorName.parse(deps.hypervisor.name),
      version: deps.hypervisor.version,
      kvm: deps.hypervisor.kvm,
      acceleration: deps.hypervisor.acceleration,
    },
    vms: deps.service.count(),
  }),
});
