/** volantd with the fake hypervisor driver, for tests that run the daemon as a process. @module */
import { FakeDriver } from "../../hypervisor/fake/mod.ts";
import { main } from "../main.ts";

Deno.exit(await main(Deno.args, { driverFactory: () => Promise.resolve(new FakeDriver()) }));
