/**
 * A fake hypervisor driver with simulated processes, for daemon tests.
 *
 * @module
 */
export {
  DEFAULT_FAKE_BEHAVIOR,
  type FakeBehavior,
  FakeDriver,
  type FakeDriverOptions,
  type FakeProcess,
  FakeRegistry,
} from "./driver.ts";
