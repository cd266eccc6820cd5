/**
 * Test helper run as its own process: creates and boots one VM with the QEMU driver, prints
 * the handle as JSON on stdout and exits, leaving the VMM running (as a daemon that stops
 * would). Usage: `deno run -A create_and_exit.ts <kvm|tcg> '<VmSpec json>' [launch prefix words...]`.
 *
 * @module
 */
import { openQemuDriver } from "../qemu/open.ts";

if (import.meta.main) {
  const [accel, specJson, ...prefix] = Deno.args;
  if (accel !== "kvm" && accel !== "tcg") {
    throw new Error(`accel: expected kvm or tcg, got ${accel}`);
  }
  const driver = await openQemuDriver({ accel, launchPrefix: prefix });
  const handle = await driver.create(JSON.parse(specJson!));
  await driver.boot(handle);
  console.log(JSON.stringify(handle));
}
