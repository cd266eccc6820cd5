/**
 * Zod schemas shared by volantd, volar and kestrel: the single source for validation,
 * REST bodies, CLI `--json` output and the OpenAPI document.
 *
 * @module
 */
export { ErrorBody, ErrorCode, fromZodError, VolantError } from "./error.ts";
export {
  HypervisorName,
  Ipv4Address,
  KernelName,
  LIMITS,
  PortMapping,
  type VmCreateInput,
  VmCreateRequest,
  VmList,
  VmName,
  VmRecord,
  VmState,
} from "./vm.ts";
export {
  BOOT_CONFIG_KEY,
  BootConfig,
  decodeBootConfig,
  encodeBootConfig,
  GuestNetwork,
  READY_MARKER,
  ReadyReport,
} from "./boot_config.ts";
export { AccelChoice, DaemonConfig, type DaemonConfigInput, HypervisorChoice } from "./config.ts";
export { ERROR_STATUS, Health, WaitQuery } from "./api.ts";
export { VERSION } from "./version.ts";
export { AGENT_PORT, AgentHealth, NetCheckRequest, NetCheckResult } from "./agent.ts";
