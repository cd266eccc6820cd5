/**
 * The "probe" appliance the network e2e tests and benchmark boot: kestrel supervising busybox
 * httpd on port 80 (`/index.html` is `ok`), with a CGI script `/cgi-bin/run` that runs the
 * request body as a shell script in the guest and answers its output. The host drives guest
 * traffic through it (the host may always reach its guests): {@linkcode guestSh},
 * {@linkcode guestReaches}.
 *
 * @module
 */
import { wgetInNetns } from "../net/testing.ts";
import type { E2eDaemon } from "./harness.ts";
import { httpdApplianceConfig } from "./httpd_appliance.ts";

/** The CGI script: its body (`CONTENT_LENGTH` bytes) run by busybox sh, output and errors back. */
const RUN_CGI = [
  "#!/bin/busybox sh",
  'echo "Content-Type: text/plain"',
  "echo",
  'script=$(/bin/busybox head -c "$CONTENT_LENGTH")',
  'PATH=/bin /bin/busybox sh -c "$script" 2>&1',
  "",
].join("\n");

/**
 * Builds the probe appliance with `volar build` (busybox from the host) and installs it,
 * unsigned, as plugin `name`; `files` are extra files under the httpd root (`www/`).
 *
 * @example
 * ```ts ignore
 * import { startDaemon } from "./harness.ts";
 * import { installProbePlugin } from "./probe_appliance.ts";
 * const daemon = await startDaemon();
 * await installProbePlugin(daemon);
 * await daemon.volar("vms", "create", "a", "--plugin", "probe");
 * ```
 */
export async function installProbePlugin(
  daemon: E2eDaemon,
  name = "probe",
  files: Record<string, Uint8Array> = {},
): Promise<void> {
  const work = `${daemon.dir}/${name}-build`;
  await Deno.mkdir(`${work}/www/cgi-bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${work}/busybox`);
  await Deno.chmod(`${work}/busybox`, 0o755);
  await Deno.writeTextFile(`${work}/www/index.html`, "ok\n");
  for (const [path, data] of Object.entries(files)) {
    await Deno.writeFile(`${work}/www/${path}`, data);
  }
  await Deno.writeTextFile(`${work}/www/cgi-bin/run`, RUN_CGI);
  await Deno.chmod(`${work}/www/cgi-bin/run`, 0o755);
  await Deno.writeTextFile(`${work}/${name}.toml`, httpdApplianceConfig(name, "kestrel"));
  const built = await daemon.volar(
    "build",
    "-c",
    `${work}/${name}.toml`,
    "-o",
    `${work}/out`,
    "--json",
  );
  if (built.code !== 0) throw new Error(`volar build: ${built.stderr}`);
  const manifest = (JSON.parse(built.stdout) as { manifest: string }).manifest;
  const installed = await daemon.volar(
    "plugins",
    "install",
    "--manifest",
    manifest,
    "--allow-unsigned",
  );
  if (installed.code !== 0) throw new Error(`volar plugins install: ${installed.stderr}`);
}

/**
 * Runs `script` (busybox sh) in the guest at `ip` through its CGI script; its output.
 *
 * @example
 * ```ts ignore
 * import { guestSh } from "./probe_appliance.ts";
 * console.log(await guestSh(daemon, "192.168.127.2", "busybox ip -4 addr show eth0"));
 * ```
 */
export function guestSh(
  daemon: Pick<E2eDaemon, "ns">,
  ip: string,
  script: string,
  timeoutMs = 60_000,
): Promise<string> {
  return wgetInNetns(daemon.ns, `http://${ip}/cgi-bin/run`, { postData: script, timeoutMs });
}

/**
 * Which of `urls` the guest at `ip` gets an answer from within `seconds` (busybox wget in the
 * guest, all at the same time): `url yes|no` lines in the order given.
 *
 * @example
 * ```ts ignore
 * import { guestReaches } from "./probe_appliance.ts";
 * const lines = await guestReaches(daemon, "192.168.127.2", ["http://192.168.127.1:9000/"]);
 * // ["http://192.168.127.1:9000/ no"]
 * ```
 */
export async function guestReaches(
  daemon: Pick<E2eDaemon, "ns">,
  ip: string,
  urls: readonly string[],
  seconds = 3,
): Promise<string[]> {
  const script =
    urls.map((url, i) =>
      `( if busybox timeout ${seconds} busybox wget -q -O /dev/null '${url}' ; ` +
      `then echo "${i} yes"; else echo "${i} no"; fi ) &`
    ).join("\n") + "\nwait\n";
  const out = await guestSh(daemon, ip, script);
  const answers = new Map(
    out.split("\n").flatMap((line) => {
      const m = /^(\d+) (yes|no)$/.exec(line.trim());
      return m ? [[Number(m[1]), m[2]!] as const] : [];
    }),
  );
  return urls.map((url, i) => `${url} ${answers.get(i) ?? `? (${out.trim()})`}`);
}
