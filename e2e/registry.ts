/**
 * A real OCI registry and image for the image tests and benchmark: Debian's docker-registry
 * inside a network namespace (where volantd pulls from), and a busybox httpd image of several
 * layers built with umoci (a later layer deletes /etc/secret and replaces the /data directory
 * with a file), pushed with skopeo.
 *
 * @module
 */
import { wgetInNetns } from "../net/testing.ts";
import { STOP_GRACE_MS, terminate } from "./harness.ts";

/** Runs a program; its stdout, or an error with its stderr. */
export async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

/** A registry started by {@linkcode startRegistryInNetns}. */
export interface E2eRegistry {
  /** SIGTERM, then SIGKILL by PID when it is still running after the grace period. */
  stop(): Promise<void>;
}

/** Debian's docker-registry inside `ns`, on its loopback at `port`; stopped by PID. */
export async function startRegistryInNetns(
  ns: string,
  dir: string,
  port: number,
): Promise<E2eRegistry> {
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/cfg.yml`,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n` +
      `  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "docker-registry", "serve", `${dir}/cfg.yml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await wgetInNetns(ns, `http://127.0.0.1:${port}/v2/`, { timeoutMs: 2000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    async stop() {
      await terminate(child, STOP_GRACE_MS);
    },
  };
}

const CHECK_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo
if [ -e /etc/secret ]; then echo secret-present; else echo secret-absent; fi
if [ -f /data ]; then echo data-is-file; else echo data-not-file; fi
echo "pwd=$(pwd)"
echo "hostname=$(hostname)"
echo "greeting=$GREETING"
`;

/**
 * An image of 4 layers: the tree, a whiteout of /etc/secret, a whiteout of /data, /data as a
 * file. `cgi`: more scripts for `/www/cgi-bin` by name (whole files).
 */
export async function buildTestImage(
  dir: string,
  cgi: Record<string, string> = {},
): Promise<string> {
  const tree = `${dir}/tree`;
  for (const d of ["bin", "www/cgi-bin", "etc", "data"]) {
    await Deno.mkdir(`${tree}/${d}`, { recursive: true });
  }
  await Deno.copyFile("/bin/busybox", `${tree}/bin/busybox`);
  await Deno.chmod(`${tree}/bin/busybox`, 0o755);
  for (const applet of ["sh", "hostname", "pwd"]) {
    await Deno.symlink("busybox", `${tree}/bin/${applet}`);
  }
  await Deno.writeTextFile(`${tree}/www/index.html`, "hello from an OCI image\n");
  await Deno.writeTextFile(`${tree}/www/cgi-bin/check`, CHECK_CGI);
  await Deno.chmod(`${tree}/www/cgi-bin/check`, 0o755);
  for (const [name, text] of Object.entries(cgi)) {
    await Deno.writeTextFile(`${tree}/www/cgi-bin/${name}`, text, { mode: 0o755 });
  }
  await Deno.writeTextFile(`${tree}/etc/secret`, "to be deleted by a later layer\n");
  await Deno.writeTextFile(`${tree}/data/inside`, "a directory a later layer replaces\n");
  await Deno.writeTextFile(`${dir}/data-file`, "now a file\n");
  const layout = `${dir}/layout`;
  const image = `${layout}:1.0`;
  await run("umoci", "init", "--layout", layout);
  await run("umoci", "new", "--image", image);
  await run("umoci", "insert", "--image", image, tree, "/");
  await run("umoci", "insert", "--image", image, "--whiteout", "/etc/secret");
  await run("umoci", "insert", "--image", image, "--whiteout", "/data");
  await run("umoci", "insert", "--image", image, `${dir}/data-file`, "/data");
  await run(
    "umoci",
    "config",
    "--image",
    image,
    "--config.entrypoint",
    "/bin/busybox",
    ...["httpd", "-f", "-p", "80", "-h", "/www"].flatMap((c) => ["--config.cmd", c]),
    "--config.exposedports",
    "80/tcp",
    "--config.workingdir",
    "/www",
    "--config.env",
    "GREETING=hello",
  );
  return layout;
}

/** Builds the test image and pushes it to `127.0.0.1:<port>/demo/web:1.0` from inside `ns`. */
export async function pushTestImage(ns: string, dir: string, port: number): Promise<string> {
  const layout = await buildTestImage(dir);
  const ref = `127.0.0.1:${port}/demo/web:1.0`;
  await run(
    "ip",
    "netns",
    "exec",
    ns,
    "skopeo",
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    `oci:${layout}:1.0`,
    `docker://${ref}`,
  );
  return ref;
}
