/**
 * The fault suite's rig (`e2e/faults_test.ts`): kill a test daemon at a named step of
 * `daemon/fault.ts`, restart it, and hold it to the invariants of `e2e/invariants.ts`; plus the
 * requests the scenarios send.
 *
 * @module
 */
import { equal } from "node:assert/strict";
import { FAULT_ENV, type FaultStep } from "../daemon/fault.ts";
import { VmRecord } from "../schema/mod.ts";
import { type E2eDaemon, pidAlive } from "./harness.ts";
import { findOrphans } from "./invariants.ts";

/** An API answer. */
export interface Answer {
  status: number;
  body: unknown;
}

/** Polls `fn` until it returns something other than `undefined`; throws after `ms`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 120_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What `daemon` leaves behind now (see `findOrphans`). */
export function orphansOf(daemon: E2eDaemon): Promise<string[]> {
  const pid = daemon.pid();
  return findOrphans({
    stateDir: `${daemon.dir}/state`,
    runtimeDir: `${daemon.dir}/run`,
    logDir: `${daemon.dir}/log`,
    netns: daemon.ns,
    cgroupParent: daemon.cgroupParent,
    ...(pid === undefined ? {} : { daemonPid: pid }),
    api: (path) => daemon.api(path),
  });
}

/** Asserts that `daemon` leaves nothing behind (`when` names the moment in the message). */
export async function assertClean(daemon: E2eDaemon, when: string): Promise<void> {
  const found = await orphansOf(daemon);
  if (found.length === 0) return;
  const reconciled = daemon.logs().filter((l) => l.includes('"reconciled"')).at(-1);
  throw new Error(
    `${found.length} orphan(s) ${when}:\n  ${found.join("\n  ")}\nlast reconcile: ${reconciled}`,
  );
}

/** A request with a JSON body (or none), never throwing: a dead daemon answers status 0. */
export async function call(
  daemon: E2eDaemon,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  try {
    return await daemon.api(path, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
  } catch (err) {
    return { status: 0, body: (err as Error).message };
  }
}

/** A request that must answer `status`; its body. */
export async function expect(
  daemon: E2eDaemon,
  status: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const answer = await call(daemon, method, path, body);
  equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** VM `name`'s record. */
export async function vm(daemon: E2eDaemon, name: string): Promise<VmRecord> {
  return VmRecord.parse(await expect(daemon, 200, "GET", `/api/v1/vms/${name}`));
}

/** Waits until VM `name` is in `state` (through the API's wait). */
export async function waitVm(daemon: E2eDaemon, name: string, state: string): Promise<VmRecord> {
  const path = `/api/v1/vms/${name}/wait?state=${state}&timeout_ms=150000`;
  return VmRecord.parse(await expect(daemon, 200, "GET", path));
}

/**
 * Kills `daemon` at `step`: restarts it with `VOLANT_TEST_FAULT=<step>` (for this start only),
 * runs `operation` (which the daemon dies under, or after it answered: the step may come
 * later), waits for it to die, checks it died by SIGKILL, starts it again without the fault
 * (it reconciles before it answers) and asserts it leaves nothing behind. Resolves to what
 * `operation` got.
 */
export async function killAt<T>(
  daemon: E2eDaemon,
  step: FaultStep,
  operation: () => Promise<T>,
): Promise<T> {
  equal(await daemon.stop(), 0, "volantd stops cleanly before the fault is armed");
  await daemon.start({ [FAULT_ENV]: step });
  const pid = daemon.pid()!;
  const got = await operation();
  await until(
    `volantd to kill itself at ${step}`,
    async () => (await pidAlive(pid)) ? undefined : true,
  );
  equal(await daemon.stop(), 137, `volantd SIGKILLed itself at ${step}`);
  await daemon.start();
  await assertClean(daemon, `after volantd was killed at ${step}`);
  return got;
}
