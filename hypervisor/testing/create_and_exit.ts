/**
 * Test helper run as its own process: creates and boots one VM with the QEMU driver, prints
 * the handle as JSON on stdout and exits, leaving the VMM running (as a daemon that stops
 * would). Usage: `deno run -A create_and_exit.ts '<VmSpec json>' [launch prefix words...]`.
 *
 * @module
 */
import { openQemuDriver } from "../qemu/open.ts";

if (import.meta.main) {
  const [specJson, ...prefix] = Deno.args;
  const driver = await openQemuDriver({ launchPrefix: prefix });
  const handle = await driver.create(JSON.parse(specJson!));
  await driver.boot(handle);
  console.log(JSON.stringify(handle));
}
