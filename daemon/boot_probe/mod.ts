/**
 * Proving KVM by booting: the prover volantd hands to driver selection and the cache of its
 * verdicts.
 *
 * ```ts ignore
 * import { bootProver, VerdictCache } from "./mod.ts";
 * const prove = bootProver({ guest, defaultKernel: "auto", cache: new VerdictCache(path),
 *   workDir: `${runtimeDir}/probe`, timeoutMs: 15_000, logger });
 * ```
 *
 * @module
 */
export { bootProver, type BootProverOptions, cleanProbeDir, verdictInputs } from "./prover.ts";
export {
  type LoadedVerdicts,
  PROBE_VERSION,
  VerdictCache,
  VerdictEntry,
  VerdictInputs,
  verdictKey,
} from "./verdicts.ts";
