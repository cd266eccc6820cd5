/**
 * `volar version`: the CLI's version, and the daemon's (from `GET /healthz`) when it can be
 * reached. An unreachable daemon is reported on stderr but is not a failure.
 *
 * @module
 */
import type { Command } from "commander";
import { type Health, VolantError } from "../../schema/mod.ts";
import { reportError } from "../errors.ts";
import { formatTable } from "../format.ts";
import type { Io } from "../io.ts";
import { VERSION } from "../../schema/version.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";

/** volar's version (the shared Volant version). */
export const VOLAR_VERSION: string = VERSION;

/** What `volar version --json` prints. */
export interface VersionInfo {
  /** The CLI's version. */
  volar: string;
  /** The daemon's health document, or `null` when it cannot be reached. */
  volantd: Health | null;
}

function describeDaemon(health: Health): string {
  const { name, version, kvm } = health.hypervisor;
  const hv = `${name}${version ? ` ${version}` : ""}, ${kvm ? "KVM" : "TCG (no KVM)"}`;
  const vms = `${health.vms} VM${health.vms === 1 ? "" : "s"}`;
  return `${health.version} (${hv}; ${vms})`;
}

/**
 * Adds the `version` command to `program`.
 *
 * @example
 * ```ts ignore
 * import { Command } from "commander";
 * import { registerVersion } from "./version.ts";
 * registerVersion(new Command("volar"), io);
 * ```
 */
export function registerVersion(program: Command, io: Io): void {
  program.command("version").description("show volar's and volantd's versions").action(
    async (_opts, cmd) => {
      const globals = globalFlags(cmd);
      let health: Health | null = null;
      let unreachable: VolantError | undefined;
      try {
        health = await withClient(globals, io, (client) => client.health());
      } catch (err) {
        if (!(err instanceof VolantError) || err.code !== "daemon_unreachable") throw err;
        unreachable = err;
      }
      const info: VersionInfo = { volar: VOLAR_VERSION, volantd: health };
      if (globals.json) printJson(io, info);
      else {
        io.out(formatTable(["volar", VOLAR_VERSION], [
          ["volantd", health ? describeDaemon(health) : "not reachable"],
        ]));
      }
      if (unreachable) reportError(io, unreachable, globals.json);
    },
  );
}
