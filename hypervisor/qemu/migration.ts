/**
 * Saving and loading a QEMU guest's state (memory, vCPUs, devices) through QEMU's migration
 * stream, over a unix socket in the VM's runtime dir, so a jailed QEMU (no files outside its
 * dir, no `exec:`: its sandbox forbids spawning) needs nothing else: to save, volantd listens
 * and QEMU (`migrate unix:…`) connects and streams the state, which volantd writes to the
 * file; to load, QEMU started with `-incoming defer` listens (`migrate-incoming unix:…`) and
 * volantd connects and streams the file to it. The guest is paused throughout; the stream is
 * QEMU's own format (zero pages are not sent), read back only by the same QEMU build.
 *
 * Bounded: each direction has a deadline; a file is written under a temporary name and
 * renamed once QEMU says the migration completed, so a cut save leaves no state file.
 *
 * @module
 */
import { VolantError } from "../../schema/mod.ts";
import { removeIfPresent } from "../spec_files.ts";

/** Runs one QMP command on the VMM (the driver's guarded executor). */
export type Qmp = <T = unknown>(command: string, args?: Record<string, unknown>) => Promise<T>;

/** The file QEMU's state goes to in a saved-state directory. */
export const QEMU_STATE_FILE = "qemu-state.bin";

/** What a save wrote: the file, its size, and how long it took (ms). */
export interface SavedFile {
  file: string;
  bytes: number;
  ms: number;
}

interface MigrateInfo {
  status?: string;
  "error-desc"?: string;
}

/** Migration bandwidth volantd allows (QEMU's default throttles to 128 MiB/s). */
const MAX_BANDWIDTH = 64 * 2 ** 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `query-migrate` until it completes; throws with QEMU's reason when it fails. */
async function waitMigration(qmp: Qmp, what: string, deadline: number): Promise<void> {
  for (;;) {
    const info = await qmp<MigrateInfo>("query-migrate");
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") {
      throw new VolantError(
        "vmm_failed",
        `QEMU could not ${what}: ${info["error-desc"] ?? info.status}`,
        { status: info.status },
      );
    }
    if (Date.now() > deadline) {
      throw new VolantError("timeout", `QEMU did not ${what} in time (status ${info.status})`, {
        status: info.status ?? null,
      });
    }
    await sleep(20);
  }
}

/**
 * Writes the paused guest's state to `file` through QEMU's migration stream (see the module
 * doc). `socket` is a path in the VM's runtime dir; `uid` the jailed QEMU's user (the socket is
 * given to it). The guest stays paused (`postmigrate`); `cont` resumes it.
 */
export async function saveState(
  qmp: Qmp,
  socket: string,
  file: string,
  options: { uid?: number; timeoutMs?: number } = {},
): Promise<SavedFile> {
  const started = performance.now();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const temp = `${file}.partial-${crypto.randomUUID().slice(0, 8)}`;
  await removeIfPresent(socket);
  const listener = Deno.listen({ transport: "unix", path: socket });
  let out: Deno.FsFile | undefined;
  try {
    if (options.uid !== undefined) await Deno.chown(socket, options.uid, null);
    await Deno.chmod(socket, 0o600);
    await qmp("migrate-set-parameters", { "max-bandwidth": MAX_BANDWIDTH });
    out = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    await qmp("migrate", { uri: `unix:${socket}` });
    const conn = await Promise.race([
      listener.accept(),
      sleep(Math.max(0, deadline - Date.now())).then(() => undefined),
    ]);
    if (conn === undefined) {
      throw new VolantError("timeout", "QEMU did not connect to save the guest's state", {
        socket,
      });
    }
    await conn.readable.pipeTo(out.writable); // closes both
    out = undefined;
    await waitMigration(qmp, "save the guest's state", deadline);
    await Deno.rename(temp, file);
    const bytes = (await Deno.stat(file)).size;
    return { file, bytes, ms: Math.round(performance.now() - started) };
  } catch (err) {
    await qmp("migrate_cancel").catch(() => {});
    throw err;
  } finally {
    try {
      out?.close();
    } catch {
      // closed by the pipe
    }
    listener.close();
    await removeIfPresent(socket);
    await removeIfPresent(temp);
  }
}

/**
 * Feeds `file` to a QEMU started with `-incoming defer` (status `inmigrate`), which then holds
 * the saved guest, paused. `socket` is a path in the VM's runtime dir that QEMU listens on.
 */
export async function loadState(
  qmp: Qmp,
  socket: string,
  file: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  await removeIfPresent(socket);
  const input = await Deno.open(file, { read: true });
  let piped = false;
  try {
    await qmp("migrate-incoming", { uri: `unix:${socket}` });
    const conn = await Deno.connect({ transport: "unix", path: socket });
    piped = true;
    await input.readable.pipeTo(conn.writable); // closes both when the file is sent
    await waitMigration(qmp, "load the saved state", deadline);
  } finally {
    if (!piped) input.close();
    await removeIfPresent(socket);
  }
}
