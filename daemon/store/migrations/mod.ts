/** Every migration, in order. Add new ones as `NNNN_<name>.ts` and list them here. @module */
import type { Migration } from "../migrate.ts";
import { migration as m0001 } from "./0001_vms.ts";
import { migration as m0002 } from "./0002_network.ts";
import { migration as m0003 } from "./0003_plugins.ts";
import { migration as m0004 } from "./0004_images.ts";

/** All migrations, oldest first. */
export const MIGRATIONS: readonly Migration[] = [m0001, m0002, m0003, m0004];
