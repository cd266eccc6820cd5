/**
 * Migration 12: the boot timeline. `timeline` is the last boot's phases as kestrel reported them
 * on the serial console (JSON: guest uptime ms per phase; `schema/boot_config.ts` BootTimeline),
 * or null before it did.
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Adds `timeline` to `vms`. */
export const migration: Migration = {
  version: 12,
  name: "boot_timeline",
  up: `ALTER TABLE vms ADD COLUMN timeline TEXT;`,
};
