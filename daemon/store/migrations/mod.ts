/** Every migration, in order. Add new ones as `NNNN_<name>.ts` and list them here. @module */
import type { Migration } from "../migrate.ts";
import { migration as m0001 } from "./0001_vms.ts";
import { migration as m0002 } from "./0002_network.ts";
import { migration as m0003 } from "./0003_plugins.ts";
import { migration as m0004 } from "./0004_images.ts";
import { migration as m0005 } from "./0005_network_policy.ts";
import { migration as m0006 } from "./0006_agent_secret.ts";
import { migration as m0007 } from "./0007_api_tokens.ts";
import { migration as m0008 } from "./0008_vmm_jail.ts";
import { migration as m0009 } from "./0009_events.ts";
import { migration as m0010 } from "./0010_deployments.ts";
import { migration as m0011 } from "./0011_policy_peer_deployments.ts";
import { migration as m0012 } from "./0012_boot_timeline.ts";

/** All migrations, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  m0001,
  m0002,
  m0003,
  m0004,
  m0005,
  m0006,
  m0007,
  m0008,
  m0009,
  m0010,
  m0011,
  m0012,
];
