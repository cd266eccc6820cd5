/**
 * Bad input end to end: each case gets a clear error naming the field or the cause, and nothing
 * is left behind (no process, socket, file or row).
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { ERROR_STATUS, ErrorBody, VmList } from "../schema/mod.ts";
import { type E2eDaemon, listTree, processesMentioning, startDaemon } from "./harness.ts";

async function assertNothingLeft(daemon: E2eDaemon): Promise<void> {
  const list = VmList.parse((await daemon.api("/api/v1/vms")).body);
  deepEqual(list.vms.map((v) => v.name), [], "no VM row");
  deepEqual(await listTree(`${daemon.dir}/run/vms`), [], "no runtime files");
  deepEqual(await listTree(`${daemon.dir}/log/vms`), [], "no VM logs");
  deepEqual(await processesMentioning(`${daemon.dir}/run/vms`), [], "no VMM process");
}

function post(body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}

async function apiError(daemon: E2eDaemon, body: unknown): Promise<ErrorBody> {
  const res = await daemon.api("/api/v1/vms", post(body));
  const error = ErrorBody.parse(res.body);
  equal(res.status, ERROR_STATUS[error.code]);
  return error;
}

Deno.test("bad create requests name the field and leave nothing behind", async () => {
  let daemon: E2eDaemon | undefined;
  try {
    daemon = await startDaemon();
    const badName = await daemon.volar("vms", "create", "Bad_Name");
    equal(badName.code, 2, badName.stderr);
    match(badName.stderr, /name/);
    equal((await apiError(daemon, { name: "Bad_Name" })).code, "invalid_argument");

    const mem = await daemon.volar("vms", "create", "small", "--memory", "1");
    equal(mem.code, 2, mem.stderr);
    match(mem.stderr, /memory/);
    const memApi = await apiError(daemon, { name: "small", memory_mb: 1 });
    equal(memApi.code, "invalid_argument");
    match(memApi.message, /memory_mb/);

    const cpu = await apiError(daemon, { name: "many", cpu_cores: 1000 });
    match(cpu.message, /cpu_cores/);
    const kernel = await apiError(daemon, { name: "k", kernel: "nope" });
    match(kernel.message, /kernel/);
    const unknown = await apiError(daemon, { name: "u", color: "red" });
    match(unknown.message, /color/);
    await assertNothingLeft(daemon);

    // A duplicate name: the first VM exists (booting), the second create is refused.
    const first = await daemon.volar("vms", "create", "dup", "--no-wait");
    equal(first.code, 0, first.stderr);
    const dup = await daemon.volar("vms", "create", "dup");
    equal(dup.code, 1);
    match(dup.stderr, /already exists/);
    equal(VmList.parse((await daemon.api("/api/v1/vms")).body).vms.length, 1);
    equal((await daemon.volar("vms", "delete", "dup")).code, 0);
    await assertNothingLeft(daemon);
  } finally {
    await daemon?.dispose();
  }
});

Deno.test("a missing kernel or hypervisor binary is a clear error with nothing left", async () => {
  const emptyGuest = await Deno.makeTempDir({ prefix: "volant-e2e-noguest-" });
  let noKernel: E2eDaemon | undefined;
  let noQemu: E2eDaemon | undefined;
  try {
    noKernel = await startDaemon({ guestDir: emptyGuest });
    noQemu = await startDaemon({
      config: ["hypervisor:", "  qemu_binary: /nonexistent/qemu-system-x86_64"],
    });
    const missing = await noKernel.volar("vms", "create", "nok");
    equal(missing.code, 1);
    match(missing.stderr, /kernel/i);
    match(missing.stderr, /volant up/);
    const missingApi = await apiError(noKernel, { name: "nok" });
    equal(missingApi.code, "kernel_not_found");
    await assertNothingLeft(noKernel);

    const noHv = await apiError(noQemu, { name: "nohv" });
    equal(noHv.code, "hypervisor_unavailable");
    match(noHv.message, /qemu/);
    await assertNothingLeft(noQemu);
  } finally {
    await noKernel?.dispose();
    await noQemu?.dispose();
    await Deno.remove(emptyGuest, { recursive: true });
  }
});
