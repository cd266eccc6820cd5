/**
 * Registry credentials kept by volantd (`volar registry login|logout|list`,
 * `/api/v1/registries`): a user name and password per registry host, used by image pulls before
 * the daemon's own `~/.docker/config.json`. Passwords go in and never come out: records carry
 * the host and user name only.
 *
 * @module
 */
import { z } from "zod";

/**
 * A registry host as image references name it: `host[:port]` (`ghcr.io`, `127.0.0.1:5000`,
 * `[::1]:5000`), lower case; `docker.io` stands for Docker Hub.
 */
export const RegistryHost = z.string().trim().toLowerCase().regex(
  /^(\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)(:\d{1,5})?$/,
  "expected a registry host[:port] like ghcr.io or 127.0.0.1:5000 (no scheme, no path)",
);

/** `POST /api/v1/registries`. */
export const RegistryLoginRequest = z.strictObject({
  host: RegistryHost,
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(8192).describe("Password or access token (never shown again)"),
});
/** `POST /api/v1/registries`. */
export type RegistryLoginRequest = z.infer<typeof RegistryLoginRequest>;

/** Stored credentials as listed: the host and the user name, never the password. */
export const RegistryCredential = z.object({
  host: z.string(),
  username: z.string(),
  updated_at: z.string(),
});
/** Stored credentials as listed. */
export type RegistryCredential = z.infer<typeof RegistryCredential>;

/** `GET /api/v1/registries`. */
export const RegistryCredentialList = z.object({ registries: z.array(RegistryCredential) });
/** `GET /api/v1/registries`. */
export type RegistryCredentialList = z.infer<typeof RegistryCredentialList>;
