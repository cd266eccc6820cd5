/**
 * Serves the API on a unix socket (and optionally TCP). A stale socket file is removed; a
 * socket another live daemon answers on is refused. Closing stops the listeners only: the
 * caller closes the service and the store, and VMs keep running.
 *
 * @module
 */
import { VolantError } from "../schema/mod.ts";
import type { Logger } from "./log.ts";

/** Options of {@linkcode serveDaemon}. */
export interface ServeOptions {
  /** Handles every request (the Hono app's `fetch`). */
  handler: (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr> | Deno.ServeHandlerInfo<Deno.UnixAddr>,
  ) => Response | Promise<Response>;
  /** Unix socket path. */
  socket: string;
  /** Mode of the socket file (e.g. `0o660`). */
  socketMode: number;
  /** Group the socket file is given to when it exists (e.g. `volant`); null: left as created. */
  socketGroup?: string | null;
  /** Where groups are looked up; default `/etc/group`. */
  groupFile?: string;
  /** `host:port` to also listen on, or `null`. */
  tcp?: string | null;
  /** Where `listening` and errors go. */
  logger: Logger;
}

/**
 * The id of group `name` in an `/etc/group`-style file, or null when it has none.
 *
 * @example
 * ```ts
 * import { groupId } from "./server.ts";
 * console.assert(await groupId("root") === 0);
 * console.assert(await groupId("no-such-group-here") === null);
 * ```
 */
export async function groupId(name: string, file = "/etc/group"): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  for (const line of text.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** A running server. */
export interface DaemonServer {
  /** The unix socket path. */
  readonly socket: string;
  /** The TCP address, when listening on TCP. */
  readonly tcp: { hostname: string; port: number } | null;
  /** Stops accepting, waits for in-flight requests, removes the socket file. */
  close(): Promise<void>;
}

/**
 * Parses `host:port` (`[::1]:7777` for IPv6).
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./server.ts";
 * console.assert(parseHostPort("127.0.0.1:7777").port === 7777);
 * ```
 */
export function parseHostPort(value: string): { hostname: string; port: number } {
  const m = value.match(/^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new VolantError(
      "invalid_argument",
      `api.tcp: expected host:port (e.g. 127.0.0.1:7777), got ${JSON.stringify(value)}`,
    );
  }
  return { hostname: (m[1] ?? m[2])!, port };
}

/**
 * Makes `path` free for a new listener: nothing there is fine; a socket nobody answers on
 * is removed; a socket a live process answers on, or any other file, is refused.
 */
export async function prepareSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (!info.isSocket) {
    throw new VolantError(
      "already_exists",
      `${path} exists and is not a socket; remove it or set api.socket elsewhere`,
      { path },
    );
  }
  let conn: Deno.Conn | undefined;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    await Deno.remove(path);
    return;
  }
  conn.close();
  throw new VolantError(
    "already_exists",
    `Another volantd is already serving on ${path}; stop it first (or set api.socket elsewhere)`,
    { path },
  );
}

/**
 * Starts the listeners.
 *
 * @example
 * ```ts ignore
 * import { serveDaemon } from "./server.ts";
 * const server = await serveDaemon({ handler: app.fetch, socket, socketMode: 0o660, logger });
 * await server.close();
 * ```
 */
export async function serveDaemon(options: ServeOptions): Promise<DaemonServer> {
  const { logger } = options;
  const tcpAddr = options.tcp ? parseHostPort(options.tcp) : null;
  const dir = options.socket.slice(0, options.socket.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await prepareSocket(options.socket);
  const onError = (err: unknown) => {
    logger.error("unhandled server error", { error: err });
    return Response.json({ code: "internal", message: "Internal error" }, { status: 500 });
  };
  const unix = Deno.serve({ path: options.socket, onListen() {}, onError }, options.handler);
  const servers: Deno.HttpServer[] = [unix];
  try {
    await Deno.chmod(options.socket, options.socketMode);
    let group = options.socketGroup ? await groupId(options.socketGroup, options.groupFile) : null;
    const missing = Boolean(options.socketGroup) && group === null;
    if (group !== null) {
      try {
        await Deno.chown(options.socket, null, group);
      } catch (err) {
        // A daemon that is not root and not in the group: the socket stays its own.
        logger.warn("cannot give the socket to its group", {
          group: options.socketGroup,
          error: err,
        });
        group = null;
      }
    }
    let tcp: { hostname: string; port: number } | null = null;
    if (tcpAddr) {
      const server = Deno.serve(
        { hostname: tcpAddr.hostname, port: tcpAddr.port, onListen() {}, onError },
        options.handler,
      );
      servers.push(server);
      const addr = server.addr as Deno.NetAddr;
      tcp = { hostname: addr.hostname, port: addr.port };
    }
    logger.info("listening", {
      socket: options.socket,
      mode: `0${options.socketMode.toString(8)}`,
      group: group === null ? null : options.socketGroup,
      ...(missing
        ? {
          note: `group ${options.socketGroup} does not exist (volar setup creates it): ` +
            "only the daemon's user can use the socket",
        }
        : {}),
      tcp: tcp ? `${tcp.hostname}:${tcp.port}` : null,
    });
    let closed: Promise<void> | undefined;
    return {
      socket: options.socket,
      tcp,
      close() {
        closed ??= (async () => {
          await Promise.all(servers.map((s) => s.shutdown()));
          await Deno.remove(options.socket).catch(() => {});
          logger.info("listeners closed", { socket: options.socket });
        })();
        return closed;
      },
    };
  } catch (err) {
    await Promise.all(servers.map((s) => s.shutdown()));
    await Deno.remove(options.socket).catch(() => {});
    if (err instanceof Deno.errors.AddrInUse) {
      throw new VolantError("already_exists", `api.tcp ${options.tcp} is already in use`, {
        tcp: options.tcp,
      });
    }
    throw err;
  }
}
