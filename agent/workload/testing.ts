/**
 * Test fixtures for the workload: a real root directory holding a copy of the static busybox
 * (its applets as symlinks, an `/etc/passwd`, a web root with CGI scripts), plugins with the
 * manifest's defaults, and waiting for a supervisor's status.
 *
 * @module
 */
import type { WorkloadStatus } from "../../schema/agent.ts";
import { type ManifestInput, RestartPolicy, Workload } from "../../schema/manifest.ts";
import { HealthCheck } from "../../schema/manifest.ts";
import type { SupervisedPlugin, SupervisorOptions } from "./options.ts";
import { Supervisor } from "./supervisor.ts";

/** The static busybox of Debian's busybox-static, the tests' stand-in for the guest's. */
export const BUSYBOX = "/bin/busybox";

/** Why the real-process tests cannot run here, or `false` when they can. */
export function cannotRun(): string | false {
  try {
    Deno.statSync(BUSYBOX);
  } catch {
    return `${BUSYBOX} is missing (install busybox-static)`;
  }
  if (Deno.uid() !== 0) return "chroot and setuid need root";
  return false;
}

/** The user in the test root's /etc/passwd. */
export const APP_USER = { name: "app", uid: 1234, gid: 2345 };

const APPLETS = ["sh", "id", "pwd", "echo", "cat", "sleep", "true", "false", "httpd", "rm", "head"];

/** A CGI script answering with the method, URI and body it got. */
const ECHO_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo "X-Workload: echo"
echo ""
echo "method=$REQUEST_METHOD uri=$REQUEST_URI"
cat
`;

/** A CGI script that answers after 3 s. */
const SLOW_CGI = `#!/bin/sh
sleep 3
echo "Content-Type: text/plain"
echo ""
echo late
`;

/** A CGI script that sends a first line, then the second only once `/tmp/go` exists. */
const STREAM_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo one
while [ ! -f /tmp/go ]; do sleep 0.05; done
echo two
`;

/**
 * Creates a workload root in a new temp directory: `/bin/busybox` and applet links, `/dev/null`,
 * `/etc/passwd`
 * with {@linkcode APP_USER}, `/srv` (owned by it), `/www` with `index.html`, `ok.html` and
 * `cgi-bin/echo`, `cgi-bin/slow`, `cgi-bin/stream`. Remove it with `Deno.remove(root, { recursive: true })`.
 */
export async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "volant-workload-" });
  await Deno.chmod(root, 0o755);
  for (const dir of ["bin", "dev", "etc", "srv", "tmp", "www/cgi-bin"]) {
    await Deno.mkdir(`${root}/${dir}`, { recursive: true, mode: 0o755 });
  }
  await Deno.chmod(`${root}/tmp`, 0o1777);
  const mknod = await new Deno.Command(BUSYBOX, {
    args: ["mknod", "-m", "666", `${root}/dev/null`, "c", "1", "3"],
  }).output();
  if (!mknod.success) throw new Error(`cannot create ${root}/dev/null`);
  await Deno.copyFile(BUSYBOX, `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  for (const applet of APPLETS) await Deno.symlink("busybox", `${root}/bin/${applet}`);
  await Deno.writeTextFile(
    `${root}/etc/passwd`,
    `root:x:0:0:root:/root:/bin/sh\n${APP_USER.name}:x:${APP_USER.uid}:${APP_USER.gid}::/srv:/bin/sh\n`,
  );
  await Deno.chown(`${root}/srv`, APP_USER.uid, APP_USER.gid);
  await Deno.writeTextFile(`${root}/www/index.html`, "index\n");
  await Deno.writeTextFile(`${root}/www/ok.html`, "ok\n");
  await Deno.writeTextFile(`${root}/www/cgi-bin/echo`, ECHO_CGI);
  await Deno.writeTextFile(`${root}/www/cgi-bin/slow`, SLOW_CGI);
  await Deno.writeTextFile(`${root}/www/cgi-bin/stream`, STREAM_CGI);
  for (const cgi of ["echo", "slow", "stream"]) {
    await Deno.chmod(`${root}/www/cgi-bin/${cgi}`, 0o755);
  }
  return root;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What a test plugin may set; the rest takes the manifest's defaults. */
export interface TestPlugin {
  name?: string;
  workload: ManifestInput["workload"];
  restart?: ManifestInput["restart"];
  health_check?: ManifestInput["health_check"];
  actions?: SupervisedPlugin["actions"];
}

/** A plugin parsed through the manifest's own schemas (so the defaults are the real ones). */
export function plugin(spec: TestPlugin): SupervisedPlugin {
  return {
    name: spec.name ?? "test",
    version: "1.0.0",
    workload: Workload.parse(spec.workload),
    restart: RestartPolicy.parse(spec.restart ?? {}),
    health_check: spec.health_check === undefined
      ? undefined
      : HealthCheck.parse(spec.health_check),
    actions: spec.actions ?? {},
  };
}

/**
 * Resolves with the first status of `sup` (now or after a change) satisfying `pred`; rejects
 * after `ms` with the last status seen.
 */
export function waitForStatus(
  sup: Supervisor,
  what: string,
  pred: (s: WorkloadStatus) => boolean,
  ms = 20_000,
): Promise<WorkloadStatus> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(`timed out waiting for ${what}; last status ${JSON.stringify(sup.status())}`),
      );
    }, ms);
    const check = (s: WorkloadStatus) => {
      if (!pred(s)) return;
      clearTimeout(timer);
      stop();
      resolve(s);
    };
    const stop = sup.watch(check);
    check(sup.status());
  });
}

/** Resolves once `pred` holds (polled every 20 ms); rejects after `ms`. */
export async function waitUntil(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await pred())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether process `pid` exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** A running busybox httpd workload (chrooted) for API tests. */
export interface HttpdWorkload {
  /** Its supervisor. */
  sup: Supervisor;
  /** Its root directory. */
  root: string;
  /** Its base_url. */
  base: string;
  /** Stops it and removes its root. */
  close(): Promise<void>;
}

/**
 * Starts `busybox httpd` serving the test root's `/www` (CGI in `/www/cgi-bin`) as a workload
 * with `actions`, and waits until it answers.
 */
export async function startHttpd(
  actions: SupervisedPlugin["actions"] = {},
  options: { name?: string } = {},
): Promise<HttpdWorkload> {
  const root = await makeRoot();
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const sup = new Supervisor(
    plugin({
      name: options.name ?? "web",
      workload: {
        entrypoint: ["/bin/httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www"],
        base_url: base,
      },
      restart: { policy: "on-failure", backoff: { initial_ms: 20, multiplier: 2, max_ms: 200 } },
      actions,
    }),
    { root, busybox: BUSYBOX, echo: false, log: () => {}, stopGraceMs: 1000 },
  );
  await sup.start();
  await waitUntil("httpd to answer", async () => {
    try {
      const res = await fetch(`${base}/index.html`);
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  });
  return {
    sup,
    root,
    base,
    close: async () => {
      await sup.stop(500);
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** Runs `body` with a fresh root and a supervisor, and always stops and cleans up. */
export async function withSupervisor(
  spec: TestPlugin,
  body: (sup: Supervisor, root: string) => Promise<void>,
  options: SupervisorOptions = {},
): Promise<void> {
  const root = await makeRoot();
  const sup = new Supervisor(plugin(spec), {
    root,
    busybox: BUSYBOX,
    echo: false,
    log: () => {},
    stopGraceMs: 2000,
    ...options,
  });
  try {
    await body(sup, root);
  } finally {
    await sup.stop(500);
    await Deno.remove(root, { recursive: true });
  }
}

/** kestrel's own events in the supervisor's log. */
export const events = (sup: Supervisor): string[] =>
  sup.logs.read().filter((l) => l.stream === "kestrel").map((l) => l.line);
/** The workload's output lines in the supervisor's log. */
export const output = (sup: Supervisor): string[] =>
  sup.logs.read().filter((l) => l.stream !== "kestrel").map((l) => l.line);
