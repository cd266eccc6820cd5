import { equal, match, ok, rejects } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import { isAlive, killAndWait } from "../process/mod.ts";
import { launchRestVmm, type LaunchRestVmmOptions } from "./launch.ts";

/** Runs `fn` with the options of a launch in a fresh runtime dir (`argv` and `ready` to set). */
async function withLaunch(
  fn: (options: Omit<LaunchRestVmmOptions, "argv" | "exe" | "ready">) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "volant-rest-launch-" });
  try {
    await fn({
      label: "Test VMM",
      log: `${dir}/vmm.log`,
      socket: `${dir}/api.sock`,
      pidFile: `${dir}/vmm.pid`,
      files: [`${dir}/api.sock.lock`],
      startTimeoutMs: 1_000,
      apiTimeoutMs: 200,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("launchRestVmm() returns the VMM once ready resolves, its pid file written", async () => {
  const sleep = await Deno.realPath("/bin/sleep");
  await withLaunch(async (options) => {
    let asked = 0;
    const vmm = await launchRestVmm({
      ...options,
      argv: [sleep, "300"],
      exe: sleep,
      ready: () => ++asked < 3 ? Promise.reject(new Error("not yet")) : Promise.resolve(),
    });
    try {
      equal(asked, 3, "asked again until it answered");
      equal(await Deno.readTextFile(options.pidFile), `${vmm.pid}\n`);
      ok(await isAlive(vmm.pid, vmm.startTime));
    } finally {
      await killAndWait(vmm.pid, vmm.startTime);
    }
  });
});

Deno.test("launchRestVmm() reports a VMM that exits while starting, with its log", async () => {
  const sh = await Deno.realPath("/bin/sh");
  await withLaunch(async (options) => {
    await Deno.writeTextFile(options.files[0]!, "");
    await rejects(
      () =>
        launchRestVmm({
          ...options,
          argv: [sh, "-c", "echo 'cannot open /dev/kvm' >&2; sleep 0.2; exit 3"],
          exe: sh,
          ready: () => Promise.reject(new Error("no socket")),
        }),
      (e: VolantError) => {
        equal(e.code, "vmm_failed");
        match(e.message, /^Test VMM exited with code 3 while starting; its log ends: cannot open/);
        return true;
      },
    );
    for (const file of [options.socket, options.pidFile, ...options.files]) {
      ok(!(await exists(file)), `${file} is removed`);
    }
  });
});

Deno.test("launchRestVmm() times out on a VMM that never answers, and kills it", async () => {
  const sleep = await Deno.realPath("/bin/sleep");
  await withLaunch(async (options) => {
    let pid = 0;
    let startTime = 0;
    await rejects(
      () =>
        launchRestVmm({
          ...options,
          startTimeoutMs: 300,
          argv: [sleep, "300"],
          exe: sleep,
          ready: () => Promise.reject(new Error("no socket")),
          onSpawn: (p, s) => {
            pid = p;
            startTime = s;
          },
        }),
      (e: VolantError) => {
        equal(e.code, "timeout");
        match(
          e.message,
          /^Test VMM \(pid \d+\) did not answer on .*api\.sock within 300 ms: the socket never appeared; its log is empty$/,
        );
        return true;
      },
    );
    ok(pid > 0 && !(await isAlive(pid, startTime)), "the VMM is killed");
    ok(!(await exists(options.pidFile)), "its pid file is removed");
  });
});
