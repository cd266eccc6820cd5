/**
 * A stand-in {@linkcode Driver} for a host whose hypervisor cannot be used: the daemon still
 * starts (so its API, health and existing records stay reachable) and every VM operation fails
 * with the same `hypervisor_unavailable` error, which carries the reason and the fix.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Driver, DriverProbe, KernelFormat, ShutdownResult, VmmHandle } from "./driver.ts";

/**
 * A driver that reports `error` for every operation.
 *
 * @example
 * ```ts
 * import { VolantError } from "../schema/mod.ts";
 * import { UnavailableDriver } from "./unavailable.ts";
 * const driver = new UnavailableDriver("qemu", new VolantError("hypervisor_unavailable", "no qemu"));
 * const probe = await driver.probe();
 * console.assert(!probe.available && probe.reason === "no qemu");
 * ```
 */
export class UnavailableDriver implements Driver {
  readonly name: string;
  readonly kvm = false;
  readonly kernelFormats: readonly KernelFormat[] = ["bzImage", "vmlinux"];
  readonly #error: VolantError;

  /** `name` is the driver that was asked for; `error` why it cannot be used. */
  constructor(name: string, error: VolantError) {
    this.name = name;
    this.#error = error;
  }

  #fail(): never {
    throw new VolantError(this.#error.code, this.#error.message, this.#error.details);
  }

  /** Reports the driver unavailable with the reason. */
  probe(): Promise<DriverProbe> {
    return Promise.resolve({
      name: this.name,
      available: false,
      kvm: false,
      reason: this.#error.message,
    });
  }
  /** Always fails with the reason. */
  create(): Promise<VmmHandle> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Always fails with the reason. */
  boot(): Promise<void> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Always fails with the reason. */
  info(): Promise<never> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Always fails with the reason. */
  pause(): Promise<void> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Always fails with the reason. */
  resume(): Promise<void> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Always fails with the reason. */
  shutdown(): Promise<ShutdownResult> {
    return Promise.resolve().then(() => this.#fail());
  }
  /** Nothing to clean. */
  cleanup(): Promise<void> {
    return Promise.resolve();
  }
  /** Cannot adopt anything: the VMM is treated as gone. */
  adopt(): Promise<boolean> {
    return Promise.resolve(false);
  }
  /** Resolves at once (nothing is watched). */
  waitExit(): Promise<void> {
    return Promise.resolve();
  }
}
