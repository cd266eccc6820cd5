/**
 * A fake hypervisor driver with simulated processes, for daemon tests.
 *
 * @module
 */
export {
  DEFAULT_FAKE_BEHAVIOR,
  FAKE_MEMORY_FILE,
  FAKE_STATE_FILE,
  type FakeBehavior,
  FakeDriver,
  type FakeDriverOptions,
  type FakeProcess,
  FakeRegistry,
} from "./driver.ts";
