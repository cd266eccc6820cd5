import assert from "node:assert/strict";
import { IdentityReply } from "../../schema/guest_control.ts";
import { applyIdentity } from "./identity.ts";
import { startControl } from "./service.ts";
import { memoryPort } from "./memory_port.ts";
import { fakeDeps, identity } from "./testing.ts";

/** A character device standing for the port (opened only through the test's `open`). */
const DEVICE = "/dev/null";

Deno.test("startControl(): opens the port it finds, serves identities, closes it on stop", async () => {
  const { port, host } = memoryPort();
  const fake = fakeDeps();
  const logs: string[] = [];
  const opened: string[] = [];
  const channel = await startControl((msg) => applyIdentity(msg, fake.deps), {
    device: DEVICE,
    log: (l) => void logs.push(l),
    open: (path) => {
      opened.push(path);
      return Promise.resolve(port);
    },
  });
  assert.equal(channel?.path, `${DEVICE}`);
  assert.deepEqual(opened, [`${DEVICE}`]);
  host.connect();
  host.send(`${JSON.stringify(identity(1))}\n`);
  const reply = IdentityReply.parse(JSON.parse(await host.nextLine()));
  assert.equal(reply.kind, "identity_applied");
  await channel!.stop();
  await channel!.stop();
  assert.equal(host.closed, true);
  assert.deepEqual(logs, [`control port ${DEVICE}`]);
});

Deno.test("startControl(): no port is quiet; a port that cannot be opened is logged; neither throws", async () => {
  const none = {};
  const t = { device: DEVICE };
  const logs: string[] = [];
  const log = (l: string) => void logs.push(l);
  const handle = () => assert.fail("no identity");
  assert.equal(await startControl(handle, { ...none, log }), undefined);
  assert.deepEqual(logs, []);
  const busy = await startControl(handle, {
    ...t,
    log,
    open: () => Promise.reject(new Deno.errors.Busy("Device or resource busy (os error 16)")),
  });
  assert.equal(busy, undefined);
  assert.deepEqual(logs, [
    `control port ${DEVICE}: cannot open it (Device or resource busy (os error 16)); ` +
    "a clone of this VM cannot take a new identity",
  ]);
});

Deno.test("startControl(): a dry run only says whether the port exists", async () => {
  const none = {};
  const t = { device: DEVICE };
  const logs: string[] = [];
  const options = {
    log: (l: string) => void logs.push(l),
    dryRun: true,
    open: () => assert.fail("a dry run opens nothing"),
  };
  const handle = () => assert.fail("no identity");
  assert.equal(await startControl(handle, { ...t, ...options }), undefined);
  assert.equal(await startControl(handle, { ...none, ...options }), undefined);
  assert.deepEqual(logs, [
    `dry run: would take new identities (clones) on control port ${DEVICE}`,
    "dry run: no control port: a clone of this VM could not take a new identity",
  ]);
});
