/**
 * Registry credentials kept by volantd (`volar registry login|logout|list`): one JSON file,
 * mode 0600, in the state directory, replaced atomically on each change. Image pulls ask it
 * first and fall back to the daemon's own `~/.docker/config.json`. Passwords are never listed,
 * logged or sent back.
 *
 * @module
 */
import { z } from "zod";
import {
  fromZodError,
  type RegistryCredential,
  RegistryHost,
  RegistryLoginRequest,
  VolantError,
} from "../../schema/mod.ts";
import type { RegistryCredentials } from "../../images/mod.ts";
import { type Logger, silentLogger } from "../log.ts";

/** The file's name under the state directory. */
export const REGISTRY_CREDENTIALS_FILE = "registry-credentials.json";

const Entry = z.object({ username: z.string(), password: z.string(), updated_at: z.string() });
const FileShape = z.object({ version: z.literal(1), registries: z.record(z.string(), Entry) });
type FileShape = z.infer<typeof FileShape>;

const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** A registry host as stored: lower case, Docker Hub's names as `docker.io`. */
function canonical(host: string): string {
  const h = host.toLowerCase();
  return HUB_ALIASES.has(h) ? "docker.io" : h;
}

/** Options of {@linkcode RegistryCredentialService}. */
export interface RegistryCredentialServiceOptions {
  /** The JSON file (`<state_dir>/registry-credentials.json`). */
  file: string;
  logger?: Logger;
  /** Clock; default `new Date()`. */
  now?: () => Date;
}

/**
 * The daemon's registry credentials.
 *
 * @example
 * ```ts
 * import { RegistryCredentialService } from "./registries.ts";
 * const dir = await Deno.makeTempDir();
 * const creds = new RegistryCredentialService({ file: `${dir}/registry-credentials.json` });
 * await creds.login({ host: "127.0.0.1:5000", username: "ci", password: "s3cret" });
 * console.assert((await creds.lookup("127.0.0.1:5000"))?.username === "ci");
 * console.assert(!JSON.stringify(await creds.list()).includes("s3cret"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class RegistryCredentialService {
  /** Where the credentials live. */
  readonly file: string;
  #logger: Logger;
  #now: () => Date;
  #writing: Promise<unknown> = Promise.resolve();

  /** A service over `options.file` (created on the first login). */
  constructor(options: RegistryCredentialServiceOptions) {
    this.file = options.file;
    this.#logger = options.logger ?? silentLogger();
    this.#now = options.now ?? (() => new Date());
  }

  async #read(): Promise<FileShape> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return { version: 1, registries: {} };
      throw err;
    }
    let parsed: ReturnType<typeof FileShape.safeParse>;
    try {
      parsed = FileShape.safeParse(JSON.parse(text));
    } catch {
      parsed = FileShape.safeParse(undefined);
    }
    if (!parsed.success) {
      throw new VolantError(
        "internal",
        `${this.file} is not a registry credentials file volantd wrote; move it away and log in ` +
          "again (volar registry login)",
        { file: this.file },
      );
    }
    return parsed.data;
  }

  async #write(data: FileShape): Promise<void> {
    const dir = this.file.slice(0, this.file.lastIndexOf("/")) || "/";
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${this.file}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(data, null, 2) + "\n", {
        createNew: true,
        mode: 0o600,
      });
      await Deno.chmod(tmp, 0o600);
      await Deno.rename(tmp, this.file);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  /** Runs `fn` after every earlier change, so two logins never lose one another. */
  #change<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#writing.then(fn, fn);
    this.#writing = next.catch(() => {});
    return next;
  }

  /** Stores (or replaces) the credentials for a host, from an unvalidated request body. */
  async login(input: unknown): Promise<RegistryCredential> {
    const parsed = RegistryLoginRequest.safeParse(input);
    if (!parsed.success) throw fromZodError(parsed.error);
    const { username, password } = parsed.data;
    const host = canonical(parsed.data.host);
    return await this.#change(async () => {
      const data = await this.#read();
      const updated_at = this.#now().toISOString();
      data.registries[host] = { username, password, updated_at };
      await this.#write(data);
      this.#logger.info("registry credentials stored", { host, username });
      return { host, username, updated_at };
    });
  }

  /** Forgets the credentials for `host`; `not_found` when there are none. */
  async logout(host: string): Promise<RegistryCredential> {
    const parsed = RegistryHost.safeParse(host);
    if (!parsed.success) throw fromZodError(parsed.error, "host");
    const key = canonical(parsed.data);
    return await this.#change(async () => {
      const data = await this.#read();
      const entry = data.registries[key];
      if (!entry) {
        throw new VolantError(
          "not_found",
          `No credentials stored for ${key} (see volar registry list)`,
          { host: key },
        );
      }
      delete data.registries[key];
      await this.#write(data);
      this.#logger.info("registry credentials removed", { host: key });
      return { host: key, username: entry.username, updated_at: entry.updated_at };
    });
  }

  /** Hosts and user names, by host; never passwords. */
  async list(): Promise<RegistryCredential[]> {
    const data = await this.#read();
    return Object.entries(data.registries)
      .map(([host, e]) => ({ host, username: e.username, updated_at: e.updated_at }))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  /**
   * The credentials for `registry` (a host[:port] as image references resolve it), or null.
   * For image pulls only: the password is in the answer.
   */
  async lookup(registry: string): Promise<RegistryCredentials | null> {
    const entry = (await this.#read()).registries[canonical(registry)];
    if (!entry) return null;
    return {
      username: entry.username,
      password: entry.password,
      source: `${this.file} (volar registry login)`,
    };
  }
}
