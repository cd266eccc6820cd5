/**
 * Migration 4: VMs that run an OCI image. `image` is the reference as the user gave it (the
 * image store resolves it; an image used by a VM cannot be removed), `image_digest` the manifest
 * digest the VM was created from (a re-pushed tag does not change a VM under it), and
 * `image_overrides` the user's `env`/`entrypoint`/`cmd` (JSON).
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Adds `image`, `image_digest`, `image_overrides` to `vms`. */
export const migration: Migration = {
  version: 4,
  name: "images",
  up: `
    ALTER TABLE vms ADD COLUMN image TEXT;
    ALTER TABLE vms ADD COLUMN image_digest TEXT;
    ALTER TABLE vms ADD COLUMN image_overrides TEXT;
    CREATE INDEX vms_image_digest ON vms (image_digest);
  `,
};
