/** Migration 1: the `vms` table, with the VMM handle in flat columns. @module */
import type { Migration } from "../migrate.ts";

/** Creates `vms`. */
export const migration: Migration = {
  version: 1,
  name: "vms",
  up: `
    CREATE TABLE vms (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL UNIQUE,
      state TEXT NOT NULL
        CHECK (state IN ('pending','starting','running','stopping','stopped','crashed')),
      cpu_cores INTEGER NOT NULL,
      memory_mb INTEGER NOT NULL,
      kernel TEXT NOT NULL,
      kernel_cmdline TEXT,
      hypervisor TEXT NOT NULL,
      kvm INTEGER NOT NULL CHECK (kvm IN (0, 1)),
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      started_at TEXT,
      ready_at TEXT,
      boot_ms INTEGER,
      last_error TEXT,
      serial_offset INTEGER NOT NULL DEFAULT 0,
      vmm_driver TEXT,
      vmm_pid INTEGER,
      vmm_start_time INTEGER,
      vmm_api_socket TEXT,
      vmm_runtime_dir TEXT,
      vmm_log TEXT,
      CHECK ((vmm_pid IS NULL) = (vmm_driver IS NULL))
    ) STRICT;
  `,
};
