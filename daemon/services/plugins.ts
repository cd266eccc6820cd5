/**
 * The plugin service: install (manifest parsed, signature checked against the trusted keys,
 * every artifact fetched into the content-addressed cache and verified), list, show, enable,
 * disable, remove (each change recorded as a `plugin.*` event in its transaction); the trusted
 * keys; and, for the VM service, a plugin's verified files before each boot. An install that
 * fails leaves no row and no blob it fetched.
 *
 * @module
 */
import {
  fromZodError,
  Manifest,
  manifestArtifacts,
  parsePublicKey,
  PluginInstallRequest,
  type PluginRecord,
  verifyManifest,
  VolantError,
} from "../../schema/mod.ts";
import { type KeyRecord, KeyTrustRequest } from "../../schema/plugin.ts";
import type { ArtifactCache } from "../artifacts/mod.ts";
import { checkDiskImage } from "../../hypervisor/disk_image.ts";
import { type Logger, silentLogger } from "../log.ts";
import { faultPoint } from "../fault.ts";
import type {
  EventStore,
  KeyStore,
  PluginArtifactRow,
  PluginRow,
  PluginStore,
} from "../store/mod.ts";
import type { PluginEventType } from "../../schema/event.ts";

/** Progress of one artifact download. */
export interface ArtifactProgress {
  role: string;
  url: string;
  received: number;
  total: number | null;
}

/** The artifact cache as the plugin service uses it. */
export type ArtifactCacheLike = Pick<
  ArtifactCache,
  "fetchArtifact" | "verifyArtifact" | "removeArtifact" | "gc"
>;

/** What {@linkcode PluginService} is built from. */
export interface PluginServiceOptions {
  /** Plugins and keys, and the event log their changes are recorded in (same transaction). */
  store: {
    plugins: PluginStore;
    keys: KeyStore;
    events: EventStore;
    transaction: <T>(fn: () => T) => T;
  };
  cache: ArtifactCacheLike;
  logger?: Logger;
}

/** A plugin's files for one boot, verified. */
export interface PluginBootFiles {
  manifest: Manifest;
  /** Cached blob paths by role (`initramfs`, `rootfs`, `disk:<name>`). */
  paths: Map<string, string>;
}

const MANIFEST_MAX_BYTES = 1024 * 1024;

async function readManifestText(url: string): Promise<string> {
  try {
    if (url.startsWith("http://") || url.startsWith("https://")) {
      const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status} ${res.statusText}`);
      }
      const text = await res.text();
      if (text.length > MANIFEST_MAX_BYTES) throw new Error("larger than 1 MiB");
      return text;
    }
    const path = url.startsWith("file://") ? decodeURIComponent(new URL(url).pathname) : url;
    const info = await Deno.stat(path);
    if (info.size > MANIFEST_MAX_BYTES) throw new Error("larger than 1 MiB");
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new VolantError(
      "artifact_unavailable",
      `url: cannot read the manifest at ${url}: ${err instanceof Error ? err.message : err}`,
      { url },
    );
  }
}

function parseManifestObject(
  raw: unknown,
): { manifest: Manifest; written: Record<string, unknown> } {
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) throw fromZodError(parsed.error, "manifest");
  return { manifest: parsed.data, written: raw as Record<string, unknown> };
}

/**
 * Manages installed plugins and trusted keys.
 *
 * @example
 * ```ts ignore
 * const plugins = new PluginService({ store, cache });
 * await plugins.install({ url: "/srv/nginx.manifest.json", allow_unsigned: true });
 * console.log(plugins.list().map((p) => p.name));
 * ```
 */
export class PluginService {
  #store: PluginServiceOptions["store"];
  #cache: ArtifactCacheLike;
  #logger: Logger;
  #installing = new Set<string>();

  /** Builds the service. */
  constructor(options: PluginServiceOptions) {
    this.#store = options.store;
    this.#cache = options.cache;
    this.#logger = options.logger ?? silentLogger();
  }

  #record(row: PluginRow): PluginRecord {
    const manifest = Manifest.parse(JSON.parse(row.manifest));
    return {
      name: row.name,
      version: row.version,
      runtime: manifest.runtime ?? manifest.name,
      description: manifest.description ?? null,
      enabled: row.enabled,
      init: manifest.init.mode,
      signature: { status: row.signature, key_id: row.key_id },
      source: row.source,
      installed_at: row.installed_at,
      updated_at: row.updated_at,
      artifacts: row.artifacts.map((a) => ({ ...a })),
      actions: Object.keys(manifest.actions).sort(),
      used_by: this.#store.plugins.usedBy(row.name),
    };
  }

  /** Records a `plugin.*` event (call inside the transaction of the change). */
  #recordEvent(type: PluginEventType, record: PluginRecord): void {
    this.#store.events.append({
      type,
      name: record.name,
      at: new Date().toISOString(),
      plugin: record,
    });
  }

  #row(name: string): PluginRow {
    const row = this.#store.plugins.get(name);
    if (!row) {
      throw new VolantError(
        "not_found",
        `plugin ${name} is not installed (see \`volar plugins list\`)`,
        { plugin: name },
      );
    }
    return row;
  }

  /** Every installed plugin, by name. */
  list(): PluginRecord[] {
    return this.#store.plugins.list().map((r) => this.#record(r));
  }

  /** One plugin; `not_found` when absent. */
  get(name: string): PluginRecord {
    return this.#record(this.#row(name));
  }

  /** The manifest exactly as installed (with its signature). */
  manifest(name: string): Record<string, unknown> {
    return JSON.parse(this.#row(name).manifest);
  }

  /** The parsed manifest of an installed plugin. */
  parsedManifest(name: string): Manifest {
    return Manifest.parse(JSON.parse(this.#row(name).manifest));
  }

  /**
   * Installs a plugin from an unvalidated request body. Checks, in order: the request, the
   * manifest (every field, unknown ones refused), its signature (a trusted key, or no signature
   * with `allow_unsigned`), then fetches every artifact and checks its sha256. On any failure
   * nothing is left: no row, and no blob this install fetched.
   */
  async install(
    input: unknown,
    onProgress?: (p: ArtifactProgress) => void,
  ): Promise<PluginRecord> {
    const req = PluginInstallRequest.safeParse(input);
    if (!req.success) throw fromZodError(req.error);
    let raw: unknown = req.data.manifest;
    if (req.data.url !== undefined) {
      const text = await readManifestText(req.data.url);
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw new VolantError(
          "invalid_argument",
          `url: the manifest at ${req.data.url} is not valid JSON: ${(err as Error).message}`,
          { url: req.data.url },
        );
      }
    }
    const { manifest, written } = parseManifestObject(raw);
    const trusted = this.#store.keys.list();
    const verification = await verifyManifest(written, trusted);
    if (verification.status === "invalid") {
      throw new VolantError(
        "signature_rejected",
        `manifest.signature: the signature does not verify with trusted key ` +
          `${verification.key_id}: the manifest was modified after signing, or signed by another key`,
        { plugin: manifest.name, key_id: verification.key_id },
      );
    }
    if (verification.status === "untrusted") {
      throw new VolantError(
        "signature_rejected",
        `manifest.signature: signed with key ${verification.key_id}, which this daemon does not ` +
          "trust (add it with `volar keys trust <public key>`)",
        { plugin: manifest.name, key_id: verification.key_id },
      );
    }
    if (verification.status === "unsigned" && !req.data.allow_unsigned) {
      throw new VolantError(
        "signature_rejected",
        `manifest.signature: plugin ${manifest.name} is not signed; sign it with ` +
          "`volar plugins sign`, or install it with --allow-unsigned",
        { plugin: manifest.name },
      );
    }
    if (this.#store.plugins.get(manifest.name) || this.#installing.has(manifest.name)) {
      throw new VolantError(
        "already_exists",
        `plugin ${manifest.name} is already installed (remove it first to replace it)`,
        { plugin: manifest.name },
      );
    }
    this.#installing.add(manifest.name);
    const fetched: string[] = [];
    try {
      const artifacts: PluginArtifactRow[] = [];
      const blobs = new Map<string, string>();
      for (const a of manifestArtifacts(manifest)) {
        const got = await this.#cache.fetchArtifact(a.url, a.checksum, {
          onProgress: (p) => onProgress?.({ role: a.role, url: a.url, ...p }),
        });
        if (!got.cached) fetched.push(a.checksum);
        faultPoint("plugin_artifact_committed");
        blobs.set(a.role, got.path);
        artifacts.push({ role: a.role, url: a.url, checksum: a.checksum, size: got.size });
        this.#logger.info("artifact ready", {
          plugin: manifest.name,
          role: a.role,
          size: got.size,
          cached: got.cached,
        });
      }
      await checkPluginDisks(manifest, blobs);
      const row = this.#store.transaction(() => {
        const row = this.#store.plugins.insert({
          name: manifest.name,
          version: manifest.version,
          enabled: manifest.enabled,
          manifest: JSON.stringify(written),
          signature: verification.status === "verified" ? "verified" : "unsigned",
          key_id: verification.status === "verified" ? verification.key_id : null,
          source: req.data.url ?? null,
          artifacts,
        });
        this.#recordEvent("plugin.installed", this.#record(row));
        return row;
      });
      faultPoint("plugin_installed");
      this.#logger.info("plugin installed", {
        plugin: row.name,
        version: row.version,
        signature: row.signature,
      });
      return this.#record(row);
    } catch (err) {
      const keep = this.#store.plugins.checksums();
      for (const checksum of fetched) {
        if (!keep.has(checksum)) await this.#cache.removeArtifact(checksum).catch(() => {});
      }
      throw err;
    } finally {
      this.#installing.delete(manifest.name);
    }
  }

  /**
   * At daemon start, before any install: removes what installs cut short left in the artifact
   * cache (a daemon killed mid-install): blobs no installed plugin uses, and every temp file.
   */
  async recover(): Promise<{ blobs: number; temp: number }> {
    const gc = await this.#cache.gc(this.#store.plugins.checksums(), { tempMaxAgeMs: 0 });
    return { blobs: gc.removed.length, temp: gc.tempRemoved };
  }

  /**
   * Enables or disables a plugin (a disabled one cannot back new VMs); records
   * `plugin.enabled` or `plugin.disabled` when that changes it.
   */
  setEnabled(name: string, enabled: boolean): PluginRecord {
    return this.#store.transaction(() => {
      const was = this.#row(name).enabled;
      const record = this.#record(this.#store.plugins.setEnabled(name, enabled));
      if (was !== enabled) {
        this.#recordEvent(enabled ? "plugin.enabled" : "plugin.disabled", record);
      }
      return record;
    });
  }

  /** Removes a plugin (refused while a VM uses it) and the blobs no other plugin needs. */
  async remove(name: string): Promise<PluginRecord> {
    const row = this.#row(name);
    const record = this.#record(row);
    this.#store.transaction(() => {
      if (this.#store.plugins.delete(name)) this.#recordEvent("plugin.removed", record);
    });
    const keep = this.#store.plugins.checksums();
    for (const a of row.artifacts) {
      if (!keep.has(a.checksum)) await this.#cache.removeArtifact(a.checksum).catch(() => {});
    }
    this.#logger.info("plugin removed", { plugin: name });
    return record;
  }

  /**
   * A plugin's manifest and verified artifact paths for a boot: refused when the plugin is
   * missing or disabled, when its manifest no longer verifies against the trusted keys (a key
   * was removed), or when a cached artifact was modified on disk.
   */
  async bootFiles(name: string): Promise<PluginBootFiles> {
    const row = this.#row(name);
    if (!row.enabled) {
      throw new VolantError(
        "invalid_state",
        `plugin ${name} is disabled (enable it with \`volar plugins enable ${name}\`)`,
        { plugin: name },
      );
    }
    const written = JSON.parse(row.manifest) as Record<string, unknown>;
    if (row.signature === "verified") {
      const v = await verifyManifest(written, this.#store.keys.list());
      if (v.status !== "verified") {
        throw new VolantError(
          "signature_rejected",
          `plugin ${name}: its manifest no longer verifies (${v.status}` +
            `${"key_id" in v ? ` key ${v.key_id}` : ""}); trust the key again or reinstall it`,
          { plugin: name },
        );
      }
    }
    const paths = new Map<string, string>();
    for (const a of row.artifacts) {
      paths.set(a.role, (await this.#cache.verifyArtifact(a.checksum)).path);
    }
    const manifest = Manifest.parse(written);
    // The header is read again before every boot: the manifest's word is not enough.
    await checkPluginDisks(manifest, paths);
    return { manifest, paths };
  }

  /** Trusts a public key. */
  async trustKey(input: unknown): Promise<KeyRecord> {
    const req = KeyTrustRequest.safeParse(input);
    if (!req.success) throw fromZodError(req.error);
    const key = await parsePublicKey(req.data.public_key);
    const row = this.#store.keys.add({ ...key, comment: req.data.comment ?? null });
    this.#logger.info("key trusted", { key_id: row.key_id });
    return row;
  }

  /** The trusted keys. */
  keys(): KeyRecord[] {
    return this.#store.keys.list();
  }

  /** Stops trusting a key; `not_found` when it was not trusted. */
  untrustKey(keyId: string): KeyRecord {
    const key = this.#store.keys.get(keyId);
    if (!key) throw new VolantError("not_found", `key ${keyId} is not trusted`, { key_id: keyId });
    this.#store.keys.remove(keyId);
    this.#logger.info("key removed", { key_id: keyId });
    return key;
  }
}

/**
 * Refuses a plugin whose qcow2 disks (or qcow2 rootfs) name a backing file or an external data
 * file: a VMM opening them would hand the guest a host file. `paths` maps artifact roles to
 * cached blobs.
 */
async function checkPluginDisks(
  manifest: Manifest,
  paths: ReadonlyMap<string, string>,
): Promise<void> {
  const disks: Array<[string, "raw" | "qcow2", string]> = manifest.disks.map((d, i) => [
    `disk:${d.name}`,
    d.format,
    `plugin ${manifest.name}: disks[${i}] (${d.name})`,
  ]);
  if (manifest.rootfs) {
    disks.push(["rootfs", manifest.rootfs.format, `plugin ${manifest.name}: rootfs`]);
  }
  for (const [role, format, field] of disks) {
    const path = paths.get(role);
    if (path !== undefined) await checkDiskImage(path, format, field);
  }
}
