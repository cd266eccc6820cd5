/**
 * e2e helpers for reaching a VM's kestrel directly, as only volantd may: the VM's secret read
 * from the test daemon's database, and requests from a namespace with or without it.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { AGENT_PORT } from "../schema/mod.ts";
import { wgetInNetns } from "../net/testing.ts";
import type { E2eDaemon } from "./harness.ts";

/** kestrel's port in the test daemon's guests (its config leaves the default). */
export const KESTREL_PORT = AGENT_PORT;

/** The secret VM `name` was started with, from the test daemon's database. */
export function kestrelSecret(daemon: Pick<E2eDaemon, "dir">, name: string): string {
  const db = new DatabaseSync(`${daemon.dir}/state/volant.db`, { readOnly: true });
  try {
    const row = db.prepare("SELECT agent_secret FROM vms WHERE name = ?").get(name) as
      | { agent_secret: string | null }
      | undefined;
    if (!row?.agent_secret) throw new Error(`VM ${name} has no kestrel secret (not running?)`);
    return row.agent_secret;
  } finally {
    db.close();
  }
}

/**
 * `busybox wget` of kestrel's `path` at `ip` from namespace `ns`, with `secret` as the bearer
 * token (none: anonymous, which kestrel refuses with 401).
 */
export function kestrelGet(
  ns: string,
  ip: string,
  path: string,
  secret?: string,
  postData?: string,
): Promise<string> {
  return wgetInNetns(ns, `http://${ip}:${KESTREL_PORT}${path}`, {
    ...(postData === undefined ? {} : { postData }),
    headers: secret === undefined ? [] : [`authorization: Bearer ${secret}`],
  });
}
