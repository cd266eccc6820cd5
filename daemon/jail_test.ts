import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { SecurityConfig, VolantError } from "../schema/mod.ts";
import type { Driver } from "../hypervisor/driver.ts";
import type { CgroupHost } from "../hypervisor/jail/mod.ts";
import { createLogger } from "./log.ts";
import { setupJail } from "./jail.ts";

const confining = { name: "qemu", confines: true } as unknown as Driver;

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: "debug",
    sink: (line: string) => void lines.push(JSON.parse(line)),
  });
  return { lines, logger };
}

Deno.test("setupJail(): security.jail off is warned at every start, and nothing is jailed", async () => {
  const { lines, logger } = capture();
  const jail = await setupJail(
    SecurityConfig.parse({ jail: false }),
    "/nonexistent",
    confining,
    logger,
  );
  equal(jail, undefined);
  ok(lines.some((l) => l.level === "warn" && /security\.jail is off/.test(String(l.msg))));
});

Deno.test("setupJail(): a host without the controllers is refused, naming the way out", async () => {
  const { logger } = capture();
  const detect = () =>
    Promise.reject(new VolantError("unsupported", "no controllers here; set security.jail: off"));
  await rejects(
    setupJail(SecurityConfig.parse({}), "/nonexistent", confining, logger, { detect }),
    (e: VolantError) => e.code === "unsupported" && /security\.jail: off/.test(e.message),
  );
});

Deno.test("setupJail(): a uid range holding a host user is refused", async () => {
  const { logger } = capture();
  const security = SecurityConfig.parse({ uid_range: [1, 10] });
  await rejects(
    setupJail(security, "/nonexistent", confining, logger),
    (e: VolantError) => e.code === "invalid_argument" && /security\.uid_range/.test(e.message),
  );
});

Deno.test("setupJail(): cgroup v1 works but is warned; the parent is made below the daemon's cgroups", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-jail-setup-" });
  try {
    const host: CgroupHost = {
      version: "v1",
      mounts: { memory: `${dir}/memory`, cpu: `${dir}/cpu`, pids: `${dir}/pids` },
      own: { memory: "/job/1", cpu: "/", pids: "/" },
      description: "cgroup v1 hierarchies (test)",
    };
    const { lines, logger } = capture();
    const jail = await setupJail(SecurityConfig.parse({}), `${dir}/run`, confining, logger, {
      detect: () => Promise.resolve(host),
    });
    ok(jail);
    deepEqual(jail.parentDirs, {
      memory: `${dir}/memory/job/1/volant`,
      cpu: `${dir}/cpu/volant`,
      pids: `${dir}/pids/volant`,
    });
    for (const d of Object.values(jail.parentDirs)) ok((await Deno.stat(d)).isDirectory);
    equal(jail.jailsDir, `${dir}/run/jails`);
    deepEqual(jail.uidRange, { start: 900_000, count: 10_000 });
    const warn = lines.find((l) => l.level === "warn");
    match(String(warn?.msg), /cgroup v1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setupJail(): a driver that runs no VMM process (the tests' fake) is not jailed", async () => {
  const { logger } = capture();
  const fake = { name: "qemu" } as unknown as Driver;
  equal(await setupJail(SecurityConfig.parse({}), "/nonexistent", fake, logger), undefined);
});
