/**
 * The per-VM secret of kestrel's API: 32 random bytes, base64url, made anew at every start of
 * the VM (the boot config is rebuilt each launch), kept in the store while the VM runs and sent
 * on every request to its kestrel. It is wrapped so it cannot leak by accident: JSON, string
 * conversion and `Deno.inspect` (the logger, events, API records, error details) show
 * `[redacted]`; only {@linkcode AgentSecret.reveal} gives the value.
 *
 * @module
 */

/** Random bytes in a secret (base64url: 43 characters). */
export const SECRET_BYTES = 32;

/** What every accidental rendering of a secret shows. */
export const REDACTED = "[redacted]";

function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * A VM's kestrel secret.
 *
 * @example
 * ```ts
 * import { AgentSecret } from "./secret.ts";
 * const secret = AgentSecret.generate();
 * console.assert(/^[A-Za-z0-9_-]{43}$/.test(secret.reveal()));
 * console.assert(JSON.stringify({ secret }) === '{"secret":"[redacted]"}');
 * console.assert(`${secret}` === "[redacted]" && !Deno.inspect(secret).includes(secret.reveal()));
 * ```
 */
export class AgentSecret {
  readonly #value: string;

  private constructor(value: string) {
    this.#value = value;
  }

  /** A new secret from {@linkcode SECRET_BYTES} bytes of the system's CSPRNG. */
  static generate(): AgentSecret {
    return new AgentSecret(base64url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES))));
  }

  /** Wraps a stored secret; `null` for `null`, empty or malformed text (not base64url). */
  static from(text: string | null | undefined): AgentSecret | null {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]{43,512}$/.test(text)) return null;
    return new AgentSecret(text);
  }

  /** The secret itself: only for the boot config, the store and the `Authorization` header. */
  reveal(): string {
    return this.#value;
  }

  /** `[redacted]`. */
  toJSON(): string {
    return REDACTED;
  }

  /** `[redacted]`. */
  toString(): string {
    return REDACTED;
  }

  /** `AgentSecret [redacted]` in `Deno.inspect` and `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return `AgentSecret ${REDACTED}`;
  }

  /** The same in Node's `util.inspect`. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `AgentSecret ${REDACTED}`;
  }
}
