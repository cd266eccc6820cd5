/**
 * `volar deployments …` (alias `deploy`): create, list, get, scale, update (rolling), delete.
 * The template flags are those of `vms create` (plugin or image, resources, kernel, network
 * policy); create, scale and update wait until every replica is healthy unless `--no-wait`.
 *
 * @module
 */
import { type Command, type CommandUnknownOpts, InvalidArgumentError, Option } from "commander";
import {
  DeploymentCreateRequest,
  DeploymentName,
  type DeploymentRecord,
  DeploymentUpdateRequest,
  MAX_REPLICAS,
  VolantError,
} from "../../schema/mod.ts";
import {
  CreateDeployment,
  DeleteDeployment,
  GetDeployment,
  ListDeployments,
  ScaleDeployment,
  UpdateDeployment,
  WaitDeployment,
} from "../../schema/operations/mod.ts";
import type { VolantClient } from "../client.ts";
import { ageSince, formatDuration, formatKeyValues, formatTable, paint } from "../format.ts";
import { colorEnabled, type Io } from "../io.ts";
import { startProgress } from "../progress.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";
import { DEFAULT_WAIT_MS } from "./_wait.ts";
import { paintState } from "./_vm_view.ts";
import {
  addTemplateOptions,
  type CreateFlags,
  ensureImage,
  parseInteger,
  parseTimeout,
  parseWithFlags,
  templateInput,
} from "./vms.ts";

const NAME_HELP = "the deployment's name: 1-57 lowercase letters, digits or '-' (e.g. web)";

/** Parses a deployment name argument. */
export function parseDeploymentName(value: string): string {
  const result = DeploymentName.safeParse(value);
  if (!result.success) throw new InvalidArgumentError(result.error.issues[0]!.message);
  return result.data;
}

/**
 * Parses a replica count.
 *
 * @example
 * ```ts
 * import { parseReplicas } from "./deployments.ts";
 * console.assert(parseReplicas("3") === 3);
 * ```
 */
export function parseReplicas(value: string): number {
  const n = parseInteger(value);
  if (n > MAX_REPLICAS) throw new InvalidArgumentError(`at most ${MAX_REPLICAS}.`);
  return n;
}

interface DeployFlags extends CreateFlags {
  replicas?: number;
  maxUnavailable?: number;
  wait: boolean;
  timeout?: number;
}

const STATUS_STYLE = {
  ready: "green",
  progressing: "yellow",
  degraded: "red",
  crash_loop: "red",
  deleting: "yellow",
} as const;

function source(d: DeploymentRecord): string {
  return d.template.plugin !== undefined
    ? `plugin ${d.template.plugin}`
    : `image ${d.template.image}`;
}

/** The `volar deployments list` table. */
export function deploymentTable(list: readonly DeploymentRecord[], now: number, color: boolean) {
  return formatTable(
    ["NAME", "STATUS", "READY", "UP-TO-DATE", "GEN", "SOURCE", "AGE"],
    list.map((d) => [
      d.name,
      paint(STATUS_STYLE[d.status], d.status, color),
      `${d.ready}/${d.replicas}`,
      String(d.updated),
      String(d.generation),
      source(d),
      ageSince(d.created_at, now),
    ]),
  );
}

/** `volar deployments get`: the deployment, then its replicas. */
export function deploymentDetails(d: DeploymentRecord, now: number, color: boolean): string {
  const head = formatKeyValues([
    ["name", d.name],
    ["status", paint(STATUS_STYLE[d.status], d.status, color)],
    ["replicas", `${d.ready}/${d.replicas} ready, ${d.updated} at generation ${d.generation}`],
    ["source", source(d)],
    ["max unavailable", String(d.max_unavailable)],
    ["created", `${d.created_at} (${ageSince(d.created_at, now)} ago)`],
  ]);
  const members = d.members.length === 0 ? "No replicas.\n" : formatTable(
    ["REPLICA", "STATE", "HEALTHY", "IP", "GEN", "RESTARTS", "ERROR"],
    d.members.map((m) => [
      m.name,
      paintState(m.state, color),
      m.healthy ? "yes" : m.crash_loop ? paint("red", "crash loop", color) : "no",
      m.ip ?? "-",
      String(m.generation),
      String(m.restarts),
      (m.last_error ?? "").split("\n")[0]!.slice(0, 60),
    ]),
  );
  const failures = d.failures.length === 0
    ? ""
    : `\nRecent failures:\n${
      d.failures.slice(-5).map((f) => `  ${f.at}  ${f.replica} ${f.action}: ${f.message}`).join(
        "\n",
      )
    }\n`;
  return `${head}\n${members}${failures}`;
}

/** Waits (in chunks the daemon allows) until the deployment is ready. */
async function waitReady(
  client: VolantClient,
  name: string,
  timeoutMs: number,
): Promise<DeploymentRecord> {
  const deadline = Date.now() + timeoutMs;
  const max = WaitDeployment.query.shape.timeout_ms.def.innerType.maxValue ?? 600_000;
  for (;;) {
    const chunk = Math.min(Math.max(deadline - Date.now(), 1), max);
    try {
      return await client.call(WaitDeployment, { name, timeout_ms: chunk });
    } catch (err) {
      if (!(err instanceof VolantError) || err.code !== "timeout") throw err;
      if (deadline - Date.now() > 0) continue;
      throw new VolantError(
        "timeout",
        `Deployment ${name} was not ready within ${formatDuration(timeoutMs)}; volantd keeps ` +
          `working on it: check with 'volar deployments get ${name}', or wait longer with --timeout`,
        { name, timeout_ms: timeoutMs },
      );
    }
  }
}

async function send(
  io: Io,
  cmd: CommandUnknownOpts,
  label: string,
  flags: { wait: boolean; timeout?: number },
  request: (client: VolantClient) => Promise<DeploymentRecord>,
): Promise<void> {
  const globals = globalFlags(cmd);
  const d = await withClient(globals, io, async (client) => {
    const progress = startProgress(io, label, { quiet: globals.json && !io.errIsTerminal });
    try {
      const sent = await request(client);
      if (!flags.wait || sent.status === "ready") return sent;
      const timeout = flags.timeout ?? DEFAULT_WAIT_MS;
      progress.update(
        `Waiting for ${sent.name}'s ${sent.replicas} replica${
          sent.replicas === 1 ? "" : "s"
        } to be healthy (up to ${formatDuration(timeout)})`,
      );
      return await waitReady(client, sent.name, timeout);
    } finally {
      progress.stop();
    }
  });
  if (globals.json) printJson(io, d);
  else io.out(deploymentDetails(d, io.now(), colorEnabled(io)));
}

const NO_WAIT_HELP = "return at once instead of waiting until every replica is healthy";
const TIMEOUT_HELP = `how long to wait, e.g. 90s or 5m (default ${DEFAULT_WAIT_MS / 1000}s)`;
const MAX_UNAVAILABLE_HELP = "during a rolling update, replicas that may be down at once " +
  "(0: start a new one before an old one goes; default 1)";

/** Adds the `deployments` command group (alias `deploy`) to `program`. */
export function registerDeployments(program: Command, io: Io): void {
  const group = program.command("deployments").alias("deploy").description(
    "manage deployments: N replicas of a plugin or image, kept healthy",
  );

  group.command("list").alias("ls").description("list deployments").action(async (_o, cmd) => {
    const globals = globalFlags(cmd);
    const list = await withClient(globals, io, (c) => c.call(ListDeployments, {}));
    if (globals.json) return printJson(io, list);
    if (list.deployments.length === 0) {
      io.out("No deployments yet. Create one: volar deployments create <name> --plugin <p>\n");
      return;
    }
    io.out(deploymentTable(list.deployments, io.now(), colorEnabled(io)));
  });

  group.command("get").description("show a deployment and its replicas")
    .argument("<name>", NAME_HELP, parseDeploymentName)
    .action(async (name, _o, cmd) => {
      const globals = globalFlags(cmd);
      const d = await withClient(globals, io, (c) => c.call(GetDeployment, { name }));
      if (globals.json) printJson(io, d);
      else io.out(deploymentDetails(d, io.now(), colorEnabled(io)));
    });

  addTemplateOptions(
    group.command("create").description(
      "create a deployment: replicas <name>-1 … <name>-N, each its own VM and address",
    ).argument("<name>", NAME_HELP, parseDeploymentName),
  )
    .addOption(
      new Option("--replicas <count>", "how many replicas").argParser(parseReplicas)
        .makeOptionMandatory(),
    )
    .option("--max-unavailable <count>", MAX_UNAVAILABLE_HELP, parseInteger)
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name: string, flags: DeployFlags, cmd: CommandUnknownOpts) => {
      const body = parseWithFlags(
        DeploymentCreateRequest,
        {
          name,
          replicas: flags.replicas,
          ...(flags.maxUnavailable !== undefined ? { max_unavailable: flags.maxUnavailable } : {}),
          ...templateInput(flags),
        },
        flags,
        "volar deployments create",
      );
      await pullFirst(io, cmd, body.image, body.insecure_registry);
      await send(io, cmd, `Creating ${name}`, flags, (c) => c.call(CreateDeployment, {}, body));
    });

  group.command("scale").description("set how many replicas run (highest indices go first)")
    .argument("<name>", NAME_HELP, parseDeploymentName)
    .argument("<replicas>", "the replica count", parseReplicas)
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name, replicas, flags, cmd) => {
      await send(
        io,
        cmd,
        `Scaling ${name} to ${replicas}`,
        flags,
        (c) => c.call(ScaleDeployment, { name }, { replicas }),
      );
    });

  addTemplateOptions(
    group.command("update").description(
      "change the template (a rolling update: one replica at a time, each new one healthy " +
        "before the next old one goes) or --max-unavailable",
    ).argument("<name>", NAME_HELP, parseDeploymentName),
  )
    .option("--max-unavailable <count>", MAX_UNAVAILABLE_HELP, parseInteger)
    .option("--no-wait", NO_WAIT_HELP)
    .option("--timeout <duration>", TIMEOUT_HELP, parseTimeout)
    .action(async (name: string, flags: DeployFlags, cmd: CommandUnknownOpts) => {
      const body = parseWithFlags(
        DeploymentUpdateRequest,
        {
          ...templateInput(flags),
          ...(flags.maxUnavailable !== undefined ? { max_unavailable: flags.maxUnavailable } : {}),
        },
        flags,
        "volar deployments update",
      );
      const image = typeof body.image === "string" ? body.image : undefined;
      await pullFirst(io, cmd, image, body.insecure_registry === true);
      await send(
        io,
        cmd,
        `Updating ${name}`,
        flags,
        (c) => c.call(UpdateDeployment, { name }, body),
      );
    });

  group.command("delete").alias("rm").description("delete a deployment and its replicas")
    .argument("<name>", NAME_HELP, parseDeploymentName)
    .action(async (name, _o, cmd) => {
      await send(
        io,
        cmd,
        `Deleting ${name} and its replicas`,
        { wait: false },
        (c) => c.call(DeleteDeployment, { name }),
      );
    });
}

async function pullFirst(
  io: Io,
  cmd: CommandUnknownOpts,
  image: string | undefined,
  insecure: boolean,
): Promise<void> {
  if (image === undefined) return;
  const globals = globalFlags(cmd);
  await withClient(globals, io, (c) => ensureImage(c, io, image, insecure, globals.json));
}
