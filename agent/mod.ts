/**
 * kestrel, Volant's PID 1 inside every microVM: mounts, boot config and hostname, the guest's
 * network, the HTTP API on the guest's eth0 address and its own port (`AGENT_PORT`, 12751 unless
 * the boot config says otherwise; every request must carry the VM's secret), zombie reaping, the
 * `KESTREL_READY` report and clean power-off.
 *
 * ```ts ignore
 * import { main } from "./mod.ts";
 * Deno.exit(await main(["--dry-run"]));
 * ```
 *
 * @module
 */
export { main, USAGE } from "./main.ts";
export { KESTREL_VERSION } from "./version.ts";
export { HOSTNAME_MAX, isValidHostname } from "./hostname.ts";
export {
  boot,
  type BootResult,
  DEFAULT_HOSTNAME,
  type Pid1Options,
  powerOff,
  resolveBoot,
  type ResolvedBoot,
  runPid1,
} from "./pid1.ts";
export {
  chooseNic,
  type ConfiguredNetwork,
  configureNetwork,
  type ConfigureNetworkOptions,
  DEFAULT_NIC,
  type NetOps,
  networkLine,
  type NetworkPlan,
  NIC_POLL_MS,
  NIC_TIMEOUT_MS,
  type NicInfo,
  planNetwork,
  planSteps,
  readLinks,
  realNetOps,
  SYS_CLASS_NET,
  waitForNic,
  wantedNic,
} from "./network.ts";
export { type Services, type ServicesOptions, startServices } from "./services.ts";
export {
  type AgentInfo,
  apiRoutes,
  type ApiServer,
  buildHealth,
  createRouter,
  type Route,
  runNetCheck,
  startApi,
} from "./api/mod.ts";
export { drySystem, log, LOG_PREFIX, print, realSystem, type System } from "./system.ts";
export {
  describeMount,
  ensureMounts,
  type MountEntry,
  type MountSpec,
  parseMountinfo,
  planMounts,
  PTMX_LINK,
  STANDARD_MOUNTS,
} from "./mounts.ts";
export {
  isReapable,
  parseProcStat,
  type ProcStat,
  type Reaped,
  Reaper,
  type ReaperOptions,
} from "./reaper.ts";
export {
  buildReadyReport,
  formatReadyLine,
  parseMeminfo,
  parseUptime,
  readReadyReport,
} from "./report.ts";
export {
  decodeInputEvents,
  EV_KEY,
  findPowerButtons,
  INPUT_EVENT_SIZE,
  type InputEvent,
  isPowerPress,
  KEY_POWER,
  POWER_BUTTON_NAME,
  type PowerReason,
  type PowerWatch,
  watchPower,
  watchPowerKey,
  type WatchPowerOptions,
} from "./power.ts";
export {
  decodeWaitStatus,
  type ExitStatus,
  LINUX_REBOOT_CMD_CAD_OFF,
  LINUX_REBOOT_CMD_POWER_OFF,
  LINUX_REBOOT_CMD_RESTART,
  MNT_DETACH,
  mount,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_RELATIME,
  PR_SET_CHILD_SUBREAPER,
  reboot,
  setChildSubreaper,
  sethostname,
  sync,
  umount2,
  waitpid,
  type WaitResult,
  WNOHANG,
} from "./libc.ts";
