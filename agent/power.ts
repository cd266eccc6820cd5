/**
 * Power requests: the ACPI power button (QMP `system_powerdown` on the host) seen as
 * KEY_POWER on the "Power Button" input device, and SIGTERM / SIGINT (Ctrl-Alt-Del once
 * `reboot(CAD_OFF)` is set). Each ends in one callback with the reason.
 *
 * @module
 */

/** Size of `struct input_event` on x86_64: timeval (16), u16 type, u16 code, i32 value. */
export const INPUT_EVENT_SIZE = 24;
/** Input event type of keys and buttons. */
export const EV_KEY = 1;
/** Key code of the power key. */
export const KEY_POWER = 116;
/** Name of the input device ACPI's button driver creates. */
export const POWER_BUTTON_NAME = "Power Button";

/** One decoded `struct input_event`. */
export interface InputEvent {
  /** Seconds part of the timestamp. */
  sec: number;
  /** Microseconds part of the timestamp. */
  usec: number;
  /** Event type (EV_KEY…). */
  type: number;
  /** Event code (KEY_POWER…). */
  code: number;
  /** Value: 1 press, 0 release, 2 autorepeat for keys. */
  value: number;
}

/**
 * Decodes whole `struct input_event`s (little-endian, 24 bytes each) from a buffer; trailing
 * bytes that do not make a whole event are ignored.
 *
 * @example
 * ```ts
 * import { decodeInputEvents, INPUT_EVENT_SIZE } from "./power.ts";
 * const buf = new Uint8Array(INPUT_EVENT_SIZE);
 * new DataView(buf.buffer).setUint16(18, 116, true);
 * console.assert(decodeInputEvents(buf)[0]?.code === 116);
 * ```
 */
export function decodeInputEvents(bytes: Uint8Array): InputEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: InputEvent[] = [];
  for (let at = 0; at + INPUT_EVENT_SIZE <= bytes.byteLength; at += INPUT_EVENT_SIZE) {
    out.push({
      sec: Number(view.getBigInt64(at, true)),
      usec: Number(view.getBigInt64(at + 8, true)),
      type: view.getUint16(at + 16, true),
      code: view.getUint16(at + 18, true),
      value: view.getInt32(at + 20, true),
    });
  }
  return out;
}

/**
 * Whether an event is a press of the power key (EV_KEY, KEY_POWER, value 1).
 *
 * @example
 * ```ts
 * import { isPowerPress } from "./power.ts";
 * console.assert(isPowerPress({ sec: 0, usec: 0, type: 1, code: 116, value: 1 }));
 * console.assert(!isPowerPress({ sec: 0, usec: 0, type: 1, code: 116, value: 0 }));
 * ```
 */
export function isPowerPress(event: InputEvent): boolean {
  return event.type === EV_KEY && event.code === KEY_POWER && event.value === 1;
}

/**
 * Device paths of every input device named "Power Button", from
 * `<sysDir>/class/input/event*\/device/name`, sorted (`/dev/input/event0`…).
 *
 * @example
 * ```ts ignore
 * import { findPowerButtons } from "./power.ts";
 * console.log(await findPowerButtons()); // ["/dev/input/event0"] in a microVM
 * ```
 */
export async function findPowerButtons(sysDir = "/sys", devDir = "/dev"): Promise<string[]> {
  const found: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(`${sysDir}/class/input`));
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^event\d+$/.test(entry.name)) continue;
    try {
      const name = await Deno.readTextFile(`${sysDir}/class/input/${entry.name}/device/name`);
      if (name.trim() === POWER_BUTTON_NAME) found.push(`${devDir}/input/${entry.name}`);
    } catch {
      // not readable: not ours
    }
  }
  return found.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/**
 * Reads input events from `path` until a power-key press (resolves `true`), the end of the
 * file (resolves `false`), or `signal` aborts (resolves `false`).
 *
 * @example
 * ```ts ignore
 * import { watchPowerKey } from "./power.ts";
 * if (await watchPowerKey("/dev/input/event0")) console.log("power button pressed");
 * ```
 */
export async function watchPowerKey(path: string, signal?: AbortSignal): Promise<boolean> {
  return await readPowerKey(await Deno.open(path, { read: true }), signal);
}

/**
 * {@linkcode watchPowerKey} on a device that is already open (events are queued only for
 * readers that have the device open, so open it before announcing readiness). Closes it.
 *
 * @example
 * ```ts ignore
 * import { readPowerKey } from "./power.ts";
 * const file = await Deno.open("/dev/input/event0");
 * if (await readPowerKey(file)) console.log("power button pressed");
 * ```
 */
export async function readPowerKey(file: Deno.FsFile, signal?: AbortSignal): Promise<boolean> {
  const onAbort = () => {
    try {
      file.close();
    } catch {
      // already closed
    }
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const buf = new Uint8Array(INPUT_EVENT_SIZE * 16);
  let pending = new Uint8Array(0);
  try {
    while (!signal?.aborted) {
      const n = await file.read(buf);
      if (n === null) return false;
      const data = new Uint8Array(pending.length + n);
      data.set(pending);
      data.set(buf.subarray(0, n), pending.length);
      const whole = data.length - (data.length % INPUT_EVENT_SIZE);
      if (decodeInputEvents(data.subarray(0, whole)).some(isPowerPress)) return true;
      pending = data.slice(whole);
    }
    return false;
  } catch (err) {
    if (signal?.aborted) return false;
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    onAbort();
  }
}

/** Why kestrel powers off. */
export type PowerReason = "power-button" | "SIGTERM" | "SIGINT";

/** Options of {@linkcode watchPower}. */
export interface WatchPowerOptions {
  /** Power-button devices to watch; default: {@linkcode findPowerButtons}. */
  devices?: string[];
  /** Signals to watch; default SIGTERM and SIGINT. */
  signals?: Array<"SIGTERM" | "SIGINT">;
  /** Told about devices watched and read errors. */
  log?: (message: string) => void;
}

/**
 * A running power watch. It keeps the process alive until {@linkcode PowerWatch.stop}, which
 * releases the listeners and closes the devices (a read already blocked on a character device
 * ends with the process).
 */
export interface PowerWatch {
  /** Resolves with the first power request. */
  readonly requested: Promise<PowerReason>;
  /** The devices being watched. */
  readonly devices: readonly string[];
  /** Stops watching. */
  stop(): void;
}

/**
 * Watches the power button(s) and signals; `requested` resolves with the first request.
 *
 * @example
 * ```ts ignore
 * import { watchPower } from "./power.ts";
 * const watch = await watchPower({ log: console.log });
 * console.log("power off because of", await watch.requested);
 * watch.stop();
 * ```
 */
export async function watchPower(options: WatchPowerOptions = {}): Promise<PowerWatch> {
  const devices = options.devices ?? (await findPowerButtons());
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const abort = new AbortController();
  // Signal listeners do not keep Deno's event loop alive: this timer does, until stop().
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let resolve!: (reason: PowerReason) => void;
  const requested = new Promise<PowerReason>((r) => (resolve = r));
  for (const sig of signals) {
    const listener = () => resolve(sig);
    Deno.addSignalListener(sig, listener);
    listeners.push([sig, listener]);
  }
  // Open every device before returning: a press is only queued for an open reader, and the
  // caller announces readiness (after which the daemon may press the button) right after.
  const opened = await Promise.all(devices.map(async (device) => {
    try {
      return { device, file: await Deno.open(device, { read: true }) };
    } catch (err) {
      options.log?.(`cannot open ${device}: ${err instanceof Error ? err.message : err}`);
      return undefined;
    }
  }));
  for (const { device, file } of opened.filter((o) => o !== undefined)) {
    readPowerKey(file, abort.signal).then(
      (pressed) => {
        if (pressed) resolve("power-button");
      },
      (err: unknown) => {
        options.log?.(`cannot read ${device}: ${err instanceof Error ? err.message : err}`);
      },
    );
  }
  return {
    requested,
    devices,
    stop() {
      abort.abort();
      clearInterval(keepAlive);
      for (const [sig, listener] of listeners) Deno.removeSignalListener(sig, listener);
      listeners.length = 0;
    },
  };
}
