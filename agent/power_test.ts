import assert from "node:assert/strict";
import {
  decodeInputEvents,
  EV_KEY,
  findPowerButtons,
  INPUT_EVENT_SIZE,
  isPowerPress,
  KEY_POWER,
  POWER_BUTTON_NAME,
  watchPower,
  watchPowerKey,
} from "./power.ts";

const EV_SYN = 0;
const KEY_A = 30;

/** Encodes `struct input_event`s as the kernel writes them on x86_64. */
function encodeEvents(events: Array<[type: number, code: number, value: number]>): Uint8Array {
  const buf = new Uint8Array(events.length * INPUT_EVENT_SIZE);
  const view = new DataView(buf.buffer);
  events.forEach(([type, code, value], i) => {
    const at = i * INPUT_EVENT_SIZE;
    view.setBigInt64(at, 1_700_000_000n + BigInt(i), true);
    view.setBigInt64(at + 8, 123_456n, true);
    view.setUint16(at + 16, type, true);
    view.setUint16(at + 18, code, true);
    view.setInt32(at + 20, value, true);
  });
  return buf;
}

Deno.test("decodeInputEvents() decodes 24-byte input_event records", () => {
  const bytes = encodeEvents([[EV_KEY, KEY_POWER, 1], [EV_SYN, 0, 0], [EV_KEY, KEY_POWER, 0]]);
  const events = decodeInputEvents(bytes);
  assert.equal(events.length, 3);
  assert.deepEqual(events[0], { sec: 1_700_000_000, usec: 123_456, type: 1, code: 116, value: 1 });
  assert.deepEqual(events.map(isPowerPress), [true, false, false]);
  // A partial record at the end is ignored; an offset view decodes the same.
  assert.equal(decodeInputEvents(bytes.subarray(0, 30)).length, 1);
  assert.equal(decodeInputEvents(bytes.subarray(INPUT_EVENT_SIZE)).length, 2);
});

Deno.test("isPowerPress() wants EV_KEY, KEY_POWER, value 1", () => {
  const press = { sec: 0, usec: 0, type: EV_KEY, code: KEY_POWER, value: 1 };
  assert.ok(isPowerPress(press));
  assert.ok(!isPowerPress({ ...press, value: 2 }), "autorepeat counted");
  assert.ok(!isPowerPress({ ...press, code: KEY_A }));
  assert.ok(!isPowerPress({ ...press, type: EV_SYN }));
});

Deno.test("findPowerButtons() finds 'Power Button' devices in a sysfs tree", async () => {
  const sys = await Deno.makeTempDir({ prefix: "kestrel-sys-" });
  try {
    const devices: Record<string, string> = {
      event0: "AT Translated Set 2 keyboard",
      event1: POWER_BUTTON_NAME,
      event10: POWER_BUTTON_NAME,
      event2: "Sleep Button",
    };
    for (const [event, name] of Object.entries(devices)) {
      await Deno.mkdir(`${sys}/class/input/${event}/device`, { recursive: true });
      await Deno.writeTextFile(`${sys}/class/input/${event}/device/name`, `${name}\n`);
    }
    await Deno.mkdir(`${sys}/class/input/input3`, { recursive: true }); // not an event node
    await Deno.mkdir(`${sys}/class/input/event4/device`, { recursive: true }); // no name file
    assert.deepEqual(await findPowerButtons(sys, "/dev"), [
      "/dev/input/event1",
      "/dev/input/event10",
    ]);
    assert.deepEqual(await findPowerButtons(`${sys}/missing`), []);
  } finally {
    await Deno.remove(sys, { recursive: true });
  }
});

Deno.test("watchPowerKey() ignores other keys and releases, and stops at the end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kestrel-input-" });
  try {
    const other = `${dir}/other`;
    await Deno.writeFile(
      other,
      encodeEvents([[EV_KEY, KEY_A, 1], [EV_KEY, KEY_POWER, 0], [EV_KEY, KEY_POWER, 2]]),
    );
    assert.equal(await watchPowerKey(other), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchPowerKey() sees a press whose bytes arrive in two reads (FIFO)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kestrel-input-" });
  try {
    const fifo = `${dir}/event0`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo failed");
    const watching = watchPowerKey(fifo);
    const writer = await Deno.open(fifo, { write: true });
    const bytes = encodeEvents([[EV_SYN, 0, 0], [EV_KEY, KEY_POWER, 1]]);
    await writer.write(bytes.subarray(0, 30)); // one event and 6 bytes of the press
    await new Promise((r) => setTimeout(r, 100));
    await writer.write(bytes.subarray(30));
    writer.close();
    assert.equal(await watching, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchPower() resolves 'power-button' on a press from a device", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kestrel-input-" });
  try {
    const device = `${dir}/event0`;
    await Deno.writeFile(device, encodeEvents([[EV_KEY, KEY_POWER, 1], [EV_SYN, 0, 0]]));
    const watch = await watchPower({ devices: [device], signals: [] });
    try {
      assert.equal(await watch.requested, "power-button");
      assert.deepEqual(watch.devices, [device]);
    } finally {
      watch.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchPower() resolves 'SIGTERM' on a real SIGTERM and logs unreadable devices", async () => {
  const logs: string[] = [];
  const watch = await watchPower({
    devices: ["/nonexistent/event9"],
    signals: ["SIGTERM"],
    log: (m) => logs.push(m),
  });
  try {
    Deno.kill(Deno.pid, "SIGTERM");
    assert.equal(await watch.requested, "SIGTERM");
    // Devices are opened before watchPower() returns, so the failure is already logged.
    assert.ok(
      logs.some((l) => l.startsWith("cannot open /nonexistent/event9")),
      `no open error logged: ${logs.join("\n")}`,
    );
  } finally {
    watch.stop();
  }
});
