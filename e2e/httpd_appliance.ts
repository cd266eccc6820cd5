/**
 * The busybox httpd appliance the e2e tests and benchmarks build with `volar build`: `./busybox` and `./www`
 * beside the config, httpd on port 80 as the workload.
 *
 * @module
 */

import { type E2eDaemon, volarOk } from "./harness.ts";

/** The builder config (TOML) of the appliance `name` in init mode `mode`, with `health` lines. */
export function httpdApplianceConfig(
  name: string,
  mode: "none" | "kestrel",
  health: readonly string[] = [`kind = "http"`, `endpoint = "/index.html"`, `interval_ms = 500`],
): string {
  return [
    `version = "1"`,
    `strategy = "initramfs"`,
    `[plugin]`,
    `name = "${name}"`,
    `version = "0.1.0"`,
    `[mappings]`,
    `"./busybox" = "/bin/busybox"`,
    `"./www" = "/www"`,
    `[init]`,
    `mode = "${mode}"`,
    `[resources]`,
    `cpu_cores = 1`,
    `memory_mb = 256`,
    `[workload]`,
    `entrypoint = ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]`,
    `base_url = "http://127.0.0.1:80"`,
    `[health_check]`,
    ...health,
    `start_period_ms = 0`,
  ].join("\n") + "\n";
}

/** A CGI script for busybox httpd: the plain-text header, then `body` (busybox sh). */
export function cgiScript(body: string): string {
  return `#!/bin/busybox sh\necho "Content-Type: text/plain"\necho\n${body}\n`;
}

/** What {@linkcode installHttpd} puts in the appliance beyond busybox. */
export interface HttpdApplianceOptions {
  /** The builder config (default {@linkcode httpdApplianceConfig} under kestrel). */
  config?: string;
  /** `/www/index.html` (default `served by <name>`). */
  index?: string;
  /** Scripts in `/www/cgi-bin` by name (whole files: see {@linkcode cgiScript}). */
  cgi?: Record<string, string>;
}

/**
 * Builds and installs the httpd appliance `name` (kestrel supervises httpd, HTTP health) from
 * `<daemon dir>/app`: `./busybox` and `./www`, with the options' page and CGI scripts.
 */
export async function installHttpd(
  daemon: E2eDaemon,
  name: string,
  options: HttpdApplianceOptions = {},
): Promise<void> {
  const work = `${daemon.dir}/app`;
  await Deno.mkdir(`${work}/www/cgi-bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${work}/busybox`);
  await Deno.chmod(`${work}/busybox`, 0o755);
  await Deno.writeTextFile(`${work}/www/index.html`, options.index ?? `served by ${name}\n`);
  for (const [script, text] of Object.entries(options.cgi ?? {})) {
    await Deno.writeTextFile(`${work}/www/cgi-bin/${script}`, text, { mode: 0o755 });
  }
  const config = options.config ?? httpdApplianceConfig(name, "kestrel");
  await Deno.writeTextFile(`${work}/${name}.toml`, config);
  const built = JSON.parse(
    await volarOk(daemon, "build", "-c", `${work}/${name}.toml`, "-o", `${work}/out`, "--json"),
  );
  await volarOk(daemon, "plugins", "install", "--manifest", built.manifest, "--allow-unsigned");
}
