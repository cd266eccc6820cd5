/**
 * Ed25519 signing of plugin manifests with WebCrypto. A public key travels as
 * `ed25519:<base64 of the 32 raw bytes>`; its id is the first 16 hex digits of the SHA-256 of
 * those bytes. A private key file is JSON ({@linkcode PrivateKeyFile}) holding the PKCS#8 form.
 *
 * @module
 */
import { canonicalManifest, type Signature } from "./manifest.ts";
import { VolantError } from "./error.ts";

/** The JSON written by `volar keys generate`. */
export interface PrivateKeyFile {
  type: "volant-ed25519-private-key";
  key_id: string;
  public_key: string;
  /** base64 PKCS#8. */
  pkcs8: string;
}

/** A public key a daemon trusts. */
export interface PublicKey {
  key_id: string;
  /** `ed25519:<base64>`. */
  public_key: string;
}

const PREFIX = "ed25519:";

function b64(bytes: Uint8Array): string {
  let bin = "";
  for (const byte of bytes) bin += String.fromCharCode(byte);
  return btoa(bin);
}

function unb64(text: string, what: string): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new VolantError("invalid_argument", `${what}: not valid base64`);
  }
}

async function keyIdOf(raw: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return Array.from(hash.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Parses `ed25519:<base64>` into a {@linkcode PublicKey}; throws `invalid_argument` naming
 * what is wrong.
 *
 * @example
 * ```ts
 * import { generateKeyPair, parsePublicKey } from "./signing.ts";
 * const { publicKey } = await generateKeyPair();
 * console.assert((await parsePublicKey(publicKey.public_key)).key_id === publicKey.key_id);
 * ```
 */
export async function parsePublicKey(text: string): Promise<PublicKey> {
  const trimmed = text.trim();
  if (!trimmed.startsWith(PREFIX)) {
    throw new VolantError(
      "invalid_argument",
      `public key: expected "ed25519:<base64 of 32 bytes>", got ${
        JSON.stringify(trimmed.slice(0, 40))
      }`,
    );
  }
  const raw = unb64(trimmed.slice(PREFIX.length), "public key");
  if (raw.length !== 32) {
    throw new VolantError(
      "invalid_argument",
      `public key: an ed25519 key is 32 bytes, this one is ${raw.length}`,
    );
  }
  return { key_id: await keyIdOf(raw), public_key: `${PREFIX}${b64(raw)}` };
}

/**
 * Generates a key pair.
 *
 * @example
 * ```ts
 * import { generateKeyPair } from "./signing.ts";
 * const { privateKey, publicKey } = await generateKeyPair();
 * console.assert(privateKey.key_id === publicKey.key_id);
 * ```
 */
export async function generateKeyPair(): Promise<
  { privateKey: PrivateKeyFile; publicKey: PublicKey }
> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const publicKey = { key_id: await keyIdOf(raw), public_key: `${PREFIX}${b64(raw)}` };
  return {
    publicKey,
    privateKey: { type: "volant-ed25519-private-key", ...publicKey, pkcs8: b64(pkcs8) },
  };
}

/**
 * Signs a manifest (as written, any `signature` ignored) and returns it with its `signature`
 * block set.
 *
 * @example
 * ```ts
 * import { generateKeyPair, signManifest } from "./signing.ts";
 * const { privateKey } = await generateKeyPair();
 * const signed = await signManifest({ name: "web", version: "1" }, privateKey);
 * console.assert(signed.signature.key_id === privateKey.key_id);
 * ```
 */
export async function signManifest<T extends Record<string, unknown>>(
  manifest: T,
  key: PrivateKeyFile,
): Promise<T & { signature: Signature }> {
  if (key?.type !== "volant-ed25519-private-key" || typeof key.pkcs8 !== "string") {
    throw new VolantError(
      "invalid_argument",
      "key: not a Volant private key file (make one with `volar keys generate`)",
    );
  }
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "pkcs8",
      unb64(key.pkcs8, "key.pkcs8"),
      { name: "Ed25519" },
      false,
      ["sign"],
    );
  } catch (err) {
    if (err instanceof VolantError) throw err;
    throw new VolantError("invalid_argument", `key.pkcs8: not an ed25519 private key (${err})`);
  }
  const sig = await crypto.subtle.sign(
    "Ed25519",
    privateKey,
    new Uint8Array(canonicalManifest(manifest)),
  );
  return {
    ...manifest,
    signature: { algorithm: "ed25519", key_id: key.key_id, value: b64(new Uint8Array(sig)) },
  };
}

/** Outcome of {@linkcode verifyManifest}. */
export type Verification =
  | { status: "verified"; key_id: string }
  | { status: "unsigned" }
  | { status: "untrusted"; key_id: string }
  | { status: "invalid"; key_id: string };

/**
 * Checks a manifest's `signature` against the trusted keys.
 *
 * @example
 * ```ts
 * import { generateKeyPair, signManifest, verifyManifest } from "./signing.ts";
 * const { privateKey, publicKey } = await generateKeyPair();
 * const signed = await signManifest({ name: "web" }, privateKey);
 * console.assert((await verifyManifest(signed, [publicKey])).status === "verified");
 * console.assert((await verifyManifest({ ...signed, name: "evil" }, [publicKey])).status === "invalid");
 * ```
 */
export async function verifyManifest(
  manifest: Record<string, unknown>,
  trusted: readonly PublicKey[],
): Promise<Verification> {
  const signature = manifest.signature as Signature | undefined;
  if (signature === undefined) return { status: "unsigned" };
  const key = trusted.find((k) => k.key_id === signature.key_id);
  if (key === undefined) return { status: "untrusted", key_id: signature.key_id };
  const publicKey = await crypto.subtle.importKey(
    "raw",
    unb64(key.public_key.slice(PREFIX.length), "public key"),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  let ok = false;
  try {
    ok = await crypto.subtle.verify(
      "Ed25519",
      publicKey,
      unb64(signature.value, "signature.value"),
      new Uint8Array(canonicalManifest(manifest)),
    );
  } catch {
    ok = false;
  }
  return ok
    ? { status: "verified", key_id: key.key_id }
    : { status: "invalid", key_id: signature.key_id };
}
