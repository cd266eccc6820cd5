/**
 * The last check of every manifest the builder writes. Internal to the builder.
 *
 * @module
 */
import { fromZodError, Manifest, type ManifestInput, VolantError } from "../schema/mod.ts";

/**
 * `input` parsed with the manifest schema (defaults applied). A failure is an `internal` error:
 * the config was validated, so the builder itself produced something wrong.
 */
export function validManifest(input: ManifestInput): Manifest {
  const parsed = Manifest.safeParse(input);
  if (!parsed.success) {
    const err = fromZodError(parsed.error, "manifest");
    throw new VolantError(
      "internal",
      `The manifest built from the config is invalid: ${err.message}`,
      err.details,
    );
  }
  return parsed.data;
}
