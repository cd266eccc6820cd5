/**
 * API bearer tokens: what `volar tokens create|list|revoke` and `/api/v1/tokens` carry. A token
 * is `volant_<id>_<secret>`: `id` (12 hex digits) names it in lists and logs, `secret` is 32
 * random bytes (base64url). volantd keeps only the sha256 of the whole token, so the token
 * itself is shown once, when it is created.
 *
 * @module
 */
import { z } from "zod";

/**
 * What a token may do: `read` — GET requests and read-only MCP tools; `admin` — everything the
 * API offers over TCP (the console, mutating routes and tools included).
 */
export const TokenScope = z.enum(["read", "admin"]);
/** One of {@linkcode TokenScope}'s values. */
export type TokenScope = z.infer<typeof TokenScope>;

/** A token's name: letters, digits, `.`, `_`, `-`; 1–63 characters, starting with a letter or digit. */
export const TokenName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
  "expected 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
);

/** A token's public id: 12 hex digits. */
export const TokenId = z.string().regex(/^[0-9a-f]{12}$/, "expected 12 hex digits");

/** The shape of a token: `volant_<id>_<secret>`. */
export const TOKEN_PATTERN: RegExp = /^volant_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** `POST /api/v1/tokens`. */
export const TokenCreateRequest = z.strictObject({
  name: TokenName.describe("Unique among tokens that are not revoked"),
  scope: TokenScope.default("read").describe("read (the default) or admin"),
});
/** `POST /api/v1/tokens` as sent. */
export type TokenCreateInput = z.input<typeof TokenCreateRequest>;

/** A token as listed: never its secret, nor its hash. */
export const TokenRecord = z.object({
  id: TokenId,
  name: z.string(),
  scope: TokenScope,
  created_at: z.string(),
  last_used_at: z.string().nullable().describe("Last accepted request (to the minute)"),
  revoked_at: z.string().nullable(),
});
/** A token as listed. */
export type TokenRecord = z.infer<typeof TokenRecord>;

/** `POST /api/v1/tokens` → 201: the record and the token, shown this once. */
export const TokenCreated = TokenRecord.extend({
  token: z.string().describe("The bearer token: send it as `Authorization: Bearer <token>`"),
});
/** `POST /api/v1/tokens` → 201. */
export type TokenCreated = z.infer<typeof TokenCreated>;

/** `GET /api/v1/tokens`. */
export const TokenList = z.object({ tokens: z.array(TokenRecord) });
/** `GET /api/v1/tokens`. */
export type TokenList = z.infer<typeof TokenList>;

/** Query of `GET /api/v1/tokens`: `all=1` lists revoked tokens too. */
export const TokenListQuery = z.strictObject({
  all: z.enum(["0", "1", "true", "false"]).optional().describe("1: revoked tokens too"),
});
