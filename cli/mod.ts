/**
 * volar, Volant's command-line client: commands over volantd's REST API, a typed API client
 * (`client.call(op, params, body)` for each operation of `schema/operations/`), and the output
 * helpers behind them. Run it through the root entry point
 * (`deno run -A main.ts volar vms list`) or call {@linkcode main} with your own
 * {@linkcode Io}:
 *
 * ```ts ignore
 * import { main, VolantClient } from "./mod.ts";
 * const code = await main(["--socket", "/run/volant/volantd.sock", "vms", "list", "--json"]);
 * const client = new VolantClient({ kind: "unix", socket: "/run/volant/volantd.sock" });
 * console.log((await client.listVms()).vms.length);
 * client.close();
 * ```
 *
 * @module
 */
export { main } from "./main.ts";
export { colorEnabled, denoIo, type Io } from "./io.ts";
export {
  type ApiTarget,
  type CallOptions,
  DEFAULT_SOCKET,
  describeTarget,
  VolantClient,
  type WaitOptions,
} from "./client.ts";
export { EXIT_ERROR, EXIT_USAGE, exitCodeFor, reportError, UsageError } from "./errors.ts";
export { buildProgram, HelpShown, wantsJson } from "./program.ts";
export {
  ageSince,
  formatAge,
  formatBoot,
  formatDuration,
  formatKeyValues,
  formatSeconds,
  formatTable,
  paint,
  parseDuration,
  stripAnsi,
  type Style,
  visibleWidth,
} from "./format.ts";
export { type Progress, type ProgressOptions, SPINNER_FRAMES, startProgress } from "./progress.ts";
export { registerVersion, type VersionInfo, VOLAR_VERSION } from "./commands/version.ts";
export {
  createRequest,
  parseInteger,
  parseName,
  parseTimeout,
  registerVms,
} from "./commands/vms.ts";
export { DoctorReport, formatDoctor, registerDoctor, runDoctor } from "./commands/doctor.ts";
export { DETACH_BYTE, registerVmConsole } from "./commands/vm_console.ts";
