/**
 * API bearer tokens: minted with 32 random bytes, stored as their sha256 only, checked in
 * constant time, scoped `read` or `admin`, revoked for good. The token itself is returned once,
 * by {@linkcode TokenService.create}, and never logged.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import {
  fromZodError,
  TOKEN_PATTERN,
  type TokenCreated,
  TokenCreateRequest,
  TokenId,
  type TokenRecord,
  VolantError,
} from "../../schema/mod.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { TokenRow, TokenStore } from "../store/mod.ts";

/** Options of {@linkcode TokenService}. */
export interface TokenServiceOptions {
  store: TokenStore;
  logger?: Logger;
  /** Clock; default `Date.now`. */
  now?: () => number;
}

/** How often a token's `last_used_at` is written at most. */
const TOUCH_EVERY_MS = 60_000;

/** What a request must send, and how to get it. */
export const TOKEN_HINT = "send Authorization: Bearer <token> (volar --token, or VOLANT_TOKEN); " +
  "create one on the daemon's host with: volar tokens create <name> [--scope read|admin]";

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function record(row: TokenRow): TokenRecord {
  const { hash: _hash, ...rest } = row;
  return rest;
}

function unauthenticated(message: string, details?: Record<string, unknown>): VolantError {
  return new VolantError("unauthenticated", message, details);
}

/**
 * Creates, lists, revokes and checks tokens.
 *
 * @example
 * ```ts
 * import { openStore } from "../store/mod.ts";
 * import { TokenService } from "./tokens.ts";
 * const dir = await Deno.makeTempDir();
 * const store = openStore(`${dir}/volant.db`);
 * const tokens = new TokenService({ store: store.tokens });
 * const { token } = tokens.create({ name: "ci", scope: "read" });
 * console.assert(tokens.authenticate(`Bearer ${token}`).scope === "read");
 * store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TokenService {
  #store: TokenStore;
  #logger: Logger;
  #now: () => number;

  /** A service over `options.store`. */
  constructor(options: TokenServiceOptions) {
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger();
    this.#now = options.now ?? Date.now;
  }

  /** Mints a token from an unvalidated request body; the answer is the only copy of it. */
  create(input: unknown): TokenCreated {
    const parsed = TokenCreateRequest.safeParse(input ?? {});
    if (!parsed.success) throw fromZodError(parsed.error);
    const { name, scope } = parsed.data;
    const id = Array.from(crypto.getRandomValues(new Uint8Array(6)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const token = `volant_${id}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const row = this.#store.insert({ id, name, scope, hash: sha256(token).toString("hex") });
    this.#logger.info("api token created", { id, name, scope });
    return { ...record(row), token };
  }

  /** Tokens oldest first (revoked ones with `all`). */
  list(all = false): TokenRecord[] {
    return this.#store.list(all).map(record);
  }

  /** How many tokens are not revoked. */
  activeCount(): number {
    return this.#store.activeCount();
  }

  /** Revokes the token named `ref` (or with id `ref`); `not_found` when there is none. */
  revoke(ref: string): TokenRecord {
    const row = (TokenId.safeParse(ref).success ? this.#store.get(ref) : undefined) ??
      this.#store.activeByName(ref);
    if (!row) {
      throw new VolantError(
        "not_found",
        `No token named ${ref} (and none with that id); see volar tokens list --all`,
        { token: ref },
      );
    }
    if (row.revoked_at !== null) return record(row);
    const revoked = this.#store.revoke(row.id)!;
    this.#logger.info("api token revoked", { id: row.id, name: row.name });
    return record(revoked);
  }

  /**
   * The token an `Authorization` header carries, checked: `unauthenticated` when the header is
   * missing or not `Bearer <token>`, or the token is unknown, wrong or revoked.
   */
  authenticate(header: string | null): TokenRecord {
    if (header === null || header.trim() === "") {
      throw unauthenticated(`This API listener needs a bearer token: ${TOKEN_HINT}`);
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) {
      throw unauthenticated(
        "The Authorization header is not a bearer token (expected Authorization: Bearer " +
          "volant_<id>_<secret>)",
      );
    }
    const token = m[1]!;
    const parts = TOKEN_PATTERN.exec(token);
    if (!parts) {
      throw unauthenticated(
        "The bearer token is malformed (expected volant_<id>_<secret>, as volar tokens create " +
          "prints it)",
      );
    }
    const id = parts[1]!;
    const row = this.#store.get(id);
    const given = sha256(token);
    // Compared in constant time, against a dummy when the id is unknown.
    const stored = row ? Buffer.from(row.hash, "hex") : Buffer.alloc(32);
    const matches = timingSafeEqual(given, stored) && row !== undefined;
    if (!row || !matches) {
      throw unauthenticated(
        `The bearer token ${id} is not valid (unknown, or its secret is wrong)`,
        {
          token_id: id,
        },
      );
    }
    if (row.revoked_at !== null) {
      throw unauthenticated(
        `The bearer token ${row.name} (${id}) was revoked at ${row.revoked_at}; ` +
          "ask for a new one (volar tokens create)",
        { token_id: id },
      );
    }
    const now = this.#now();
    const last = row.last_used_at === null ? 0 : Date.parse(row.last_used_at);
    if (now - last >= TOUCH_EVERY_MS) {
      const at = new Date(now).toISOString();
      this.#store.touch(id, at);
      return record({ ...row, last_used_at: at });
    }
    return record(row);
  }
}
