/**
 * Deployment schemas: a named set of identical VMs ("replicas", `<name>-1` … `<name>-N`) that
 * volantd keeps at a desired count, replacing replicas that crash or stay unhealthy, and
 * replacing them one at a time when the template changes (a rolling update).
 *
 * @module
 */
import { z } from "zod";
import { checkVmTemplate, VmState, VmTemplateFields } from "./vm.ts";

/**
 * A deployment name: a DNS label short enough that `<name>-<n>` (up to 5 digits) is one too.
 */
export const DeploymentName = z.string().regex(
  /^[a-z0-9]([a-z0-9-]{0,55}[a-z0-9])?$/,
  "must be 1-57 lowercase letters, digits or '-', starting and ending with a letter or digit",
);

/** Hard ceiling on replicas (the daemon's `deployments.max_replicas` is usually lower). */
export const MAX_REPLICAS = 10_000;

/** A replica count. */
export const Replicas = z.number().int().min(0, "must be 0 or more").max(MAX_REPLICAS).describe(
  "How many replicas to keep running (at most the daemon's deployments.max_replicas)",
);

/** How many replicas may be unavailable during a rolling update. */
export const MaxUnavailable = z.number().int().min(0).max(MAX_REPLICAS).describe(
  "During a rolling update, how many replicas may be unavailable at once (0: start a new " +
    "replica before an old one goes)",
);

function checkTemplate(
  t: Parameters<typeof checkVmTemplate>[0],
  ctx: z.core.$RefinementCtx,
): void {
  if (t.plugin === undefined && t.image === undefined) {
    ctx.addIssue({ code: "custom", path: ["plugin"], message: "give a plugin or an image" });
  }
  checkVmTemplate(t, ctx);
}

/** What every replica of a deployment is made from: a VM definition without name, address or host ports. */
export const DeploymentTemplate = z.strictObject(VmTemplateFields).superRefine(checkTemplate);
/** {@linkcode DeploymentTemplate}, defaults applied. */
export type DeploymentTemplate = z.infer<typeof DeploymentTemplate>;

/** Body of `POST /api/v1/deployments`. */
export const DeploymentCreateRequest = z.strictObject({
  name: DeploymentName,
  replicas: Replicas,
  max_unavailable: MaxUnavailable.default(1),
  ...VmTemplateFields,
}).superRefine(checkTemplate);
/** {@linkcode DeploymentCreateRequest}, defaults applied. */
export type DeploymentCreateRequest = z.infer<typeof DeploymentCreateRequest>;
/** What a client sends to `POST /api/v1/deployments`. */
export type DeploymentCreateInput = z.input<typeof DeploymentCreateRequest>;

/** Body of `POST /api/v1/deployments/:name/scale`. */
export const DeploymentScaleRequest = z.strictObject({ replicas: Replicas });

/**
 * Body of `PATCH /api/v1/deployments/:name`: each template field given replaces the current
 * one (`image` replaces `plugin` and the reverse); any template change starts a rolling update.
 */
export const DeploymentUpdateRequest = z.strictObject({
  // Without their defaults: a field not sent leaves the template's value alone.
  ...Object.fromEntries(
    Object.entries(VmTemplateFields).map((
      [k, v],
    ) => [k, (v instanceof z.ZodDefault ? v.unwrap() as z.ZodType : v as z.ZodType).optional()]),
  ) as { [K in keyof typeof VmTemplateFields]: z.ZodOptional<z.ZodType> },
  max_unavailable: MaxUnavailable.optional(),
}).refine((u) => Object.values(u).some((v) => v !== undefined), {
  message: "give at least one field to change",
});
/** {@linkcode DeploymentUpdateRequest}. */
export type DeploymentUpdateRequest = z.infer<typeof DeploymentUpdateRequest>;

/** One replica as a deployment reports it. */
export const DeploymentReplica = z.object({
  name: z.string(),
  state: VmState,
  healthy: z.boolean().describe("Running, and its workload healthy (or without a health check)"),
  ip: z.string().nullable(),
  generation: z.number().int().describe("The template generation it was made from"),
  restarts: z.number().int(),
  crash_loop: z.boolean(),
  last_error: z.string().nullable(),
});
/** {@linkcode DeploymentReplica}. */
export type DeploymentReplica = z.infer<typeof DeploymentReplica>;

/** A deployment's overall condition. */
export const DeploymentStatus = z.enum([
  "ready",
  "progressing",
  "degraded",
  "crash_loop",
  "deleting",
]);
/** {@linkcode DeploymentStatus}. */
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;

/** A replica create, replace or restart that failed. */
export const DeploymentFailure = z.object({
  replica: z.string(),
  action: z.enum(["create", "replace", "restart", "start", "delete"]),
  at: z.string(),
  message: z.string(),
});
/** {@linkcode DeploymentFailure}. */
export type DeploymentFailure = z.infer<typeof DeploymentFailure>;

/** A deployment as the API returns it. */
export const DeploymentRecord = z.object({
  name: DeploymentName,
  status: DeploymentStatus.describe(
    "ready: every replica healthy at the current generation; progressing: replicas are being " +
      "created, replaced or removed; degraded: a replica is unhealthy or an action failed; " +
      "crash_loop: a replica crash-loops; deleting: its replicas are being deleted",
  ),
  replicas: z.number().int().describe("Desired replicas"),
  ready: z.number().int().describe("Healthy replicas"),
  updated: z.number().int().describe("Replicas at the current generation"),
  generation: z.number().int().describe("Bumped by every template change"),
  max_unavailable: z.number().int(),
  template: DeploymentTemplate,
  members: z.array(DeploymentReplica).describe("Its replicas, by name"),
  failures: z.array(DeploymentFailure).describe("The latest failed actions (at most 10)"),
  created_at: z.string(),
  updated_at: z.string(),
});
/** {@linkcode DeploymentRecord}. */
export type DeploymentRecord = z.infer<typeof DeploymentRecord>;

/** Body of `GET /api/v1/deployments`. */
export const DeploymentList = z.object({ deployments: z.array(DeploymentRecord) });

/**
 * The replica name for index `n` of deployment `name`.
 *
 * @example
 * ```ts
 * import { replicaIndex, replicaName } from "./deployment.ts";
 * console.assert(replicaName("web", 3) === "web-3");
 * console.assert(replicaIndex("web", "web-3") === 3 && replicaIndex("web", "web-x") === null);
 * ```
 */
export function replicaName(name: string, n: number): string {
  return `${name}-${n}`;
}

/** The index of replica `vm` of deployment `name`, or null when it is not a replica name. */
export function replicaIndex(name: string, vm: string): number | null {
  if (!vm.startsWith(`${name}-`)) return null;
  const rest = vm.slice(name.length + 1);
  return /^[1-9][0-9]{0,4}$/.test(rest) ? Number(rest) : null;
}
