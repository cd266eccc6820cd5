/** Test fixtures for the store (not part of the public API). @module */
import type { NewVm } from "./types.ts";

/** A minimal VM row to insert: a stopped-in-creation `pending` VM with nothing attached. */
export function newVm(name: string, patch: Partial<NewVm> = {}): NewVm {
  return {
    name,
    state: "pending",
    cpu_cores: 1,
    memory_mb: 256,
    kernel: "bzImage-volant",
    kernel_cmdline: null,
    hypervisor: "qemu",
    kvm: false,
    started_at: null,
    ready_at: null,
    boot_ms: null,
    last_error: null,
    serial_offset: 0,
    handle: null,
    mac: null,
    tap: null,
    last_ip: null,
    plugin: null,
    workload: null,
    image: null,
    image_digest: null,
    image_overrides: null,
    ...patch,
  };
}
