/**
 * The accelerator real-VM tests boot with, proven the way volantd proves it: QEMU with KVM boots
 * the test guest's kernel once to the probe marker, or the tests use TCG. The verdict is cached
 * in {@linkcode TEST_BOOT_VERDICTS} (the same file the e2e daemons are pointed at), so a test
 * run probes at most once, and a host whose `/dev/kvm` opens but cannot run the guest (nested
 * PVM) costs one probe deadline instead of hanging every test.
 *
 * @module
 */
import { openQemuDriver } from "../../hypervisor/qemu/open.ts";
import { detectKvm } from "../../hypervisor/kvm.ts";
import { silentLogger } from "../log.ts";
import { guestDirArtifacts } from "../guest.ts";
import { bootProver } from "./prover.ts";
import { VerdictCache } from "./verdicts.ts";

/** The verdict cache the tests share: `<repo>/.cache/boot-verdicts.json`. */
export const TEST_BOOT_VERDICTS = new URL("../../.cache/boot-verdicts.json", import.meta.url)
  .pathname;

/** The guest the tests boot: `VOLANT_TEST_GUEST_DIR`, else `<repo>/.cache/guest`. */
const GUEST_DIR = Deno.env.get("VOLANT_TEST_GUEST_DIR") ??
  new URL("../../.cache/guest", import.meta.url).pathname;

let proven: Promise<"kvm" | "tcg"> | undefined;

/**
 * `kvm` when QEMU with KVM boots the test guest here (proven once, cached), else `tcg`.
 *
 * @example
 * ```ts ignore
 * import { testAccel } from "./testing.ts";
 * const driver = await openQemuDriver({ accel: await testAccel() });
 * ```
 */
export function testAccel(): Promise<"kvm" | "tcg"> {
  proven ??= (async () => {
    if (!(await detectKvm()).available) return "tcg";
    const driver = await openQemuDriver({ accel: "kvm" }).catch(() => null);
    if (!driver) return "tcg";
    const prove = bootProver({
      guest: guestDirArtifacts(GUEST_DIR),
      defaultKernel: "bzImage-volant",
      cache: new VerdictCache(TEST_BOOT_VERDICTS),
      workDir: await Deno.makeTempDir({ prefix: "volant-test-probe-" }),
      timeoutMs: 15_000,
      logger: silentLogger(),
    });
    const verdict = await prove(driver);
    if (!verdict.ok) {
      console.log(`tests boot under TCG: KVM does not boot the guest here (${verdict.reason})`);
    }
    return verdict.ok ? "kvm" : "tcg";
  })();
  return proven;
}
