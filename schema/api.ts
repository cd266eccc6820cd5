/**
 * REST API bodies beyond the VM record, and the error-code → HTTP status table the
 * daemon answers with (the CLI reads statuses through it too).
 *
 * The routes themselves — method, path, inputs, answer, errors, access, MCP tool — are declared
 * once, in the table of operations (`schema/operations/`), and `GET /openapi.json` is built
 * from it. Errors are {@linkcode ErrorBody} with the status of {@linkcode ERROR_STATUS}.
 *
 * Every request: a loopback or configured `Host`, no cross-site `Origin`, JSON bodies; over TCP a
 * bearer token (see `daemon/api/access.ts`).
 *
 * @module
 */
import { z } from "zod";
import { HypervisorName, VmState } from "./vm.ts";

/**
 * Which accelerator the daemon's hypervisor runs guests with, and why: KVM only once a probe
 * boot of the guest kernel proved it (cached per VMM binary, guest kernel, host kernel and
 * `/dev/kvm`); TCG when there is no usable KVM, the probe failed, or the config asks for it.
 */
export const Acceleration = z.object({
  accel: z.enum(["kvm", "tcg"]),
  reason: z.string().describe("One sentence: the probe's verdict, or why KVM is not used"),
  probe: z.object({
    ok: z.boolean(),
    ms: z.number().int().nullable().describe("Boot to the probe marker (or to the failure)"),
    cached: z.boolean().describe("The verdict came from the cache, no probe ran this start"),
    checked_at: z.string().nullable().describe("When the probe ran (ISO 8601)"),
    reason: z.string().nullable().describe("Why the probe failed"),
  }).nullable().describe("The KVM probe's verdict; null when none was needed"),
});
/** One {@linkcode Acceleration}. */
export type Acceleration = z.infer<typeof Acceleration>;

/** `GET /healthz`. */
export const Health = z.object({
  status: z.literal("ok"),
  version: z.string(),
  hypervisor: z.object({
    name: HypervisorName,
    version: z.string().nullable(),
    kvm: z.boolean(),
    acceleration: Acceleration,
  }),
  vms: z.number().int(),
});
/** `GET /healthz`. */
export type Health = z.infer<typeof Health>;

/**
 * `GET /api/v1/vms/:name/console` without `Upgrade: websocket`: the console can be attached now
 * (the upgrade itself answers 101 and then carries the serial console's bytes both ways).
 */
export const ConsoleInfo = z.object({
  name: z.string(),
  attachable: z.boolean(),
});
/** `GET /api/v1/vms/:name/console` without an upgrade. */
export type ConsoleInfo = z.infer<typeof ConsoleInfo>;

/** Query of `GET /api/v1/vms/:name/wait`. */
export const WaitQuery = z.strictObject({
  state: VmState.default("running"),
  timeout_ms: z.coerce.number().int().min(0).max(600_000).default(60_000),
});
/** Query of `GET /api/v1/vms/:name/wait`. */
export type WaitQuery = z.infer<typeof WaitQuery>;

export { ERROR_STATUS } from "./error.ts";
