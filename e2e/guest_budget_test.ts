/**
 * What a real guest costs and where its boot goes, measured the way users see it: a `volar build`
 * appliance (busybox httpd under kestrel) boots through volantd; `volar vms get --timeline`
 * lists the phases of its boot in order, and `volar vms stats` (read in the guest, after it
 * settled) stays within the memory budgets below. Timing is never asserted here (benchmarks do
 * that); memory and sizes do not depend on the machine's speed.
 */
import { ok } from "node:assert/strict";
import { GuestStats, TIMELINE_CHAINS, TIMELINE_PHASES, VmRecord } from "../schema/mod.ts";
import { startDaemon, testGuestDir, volarOk } from "./harness.ts";
import { installHttpd } from "./httpd_appliance.ts";

/**
 * Budgets: guest memory in use and kestrel's resident set, settled (MiB); stage 0's archive
 * (MiB); the JavaScript the guest runs (KiB: kestrel alone — the whole three-program bundle once
 * ended up in the test guest and cost it ~60 MiB).
 */
export const BUDGETS = {
  guestUsedMib: 64,
  kestrelRssMib: 64,
  initramfsMib: 4,
  guestBundleKib: 512,
} as const;

Deno.test("a kestrel appliance: boot phases in order, memory and stage 0 within their budgets", async () => {
  const guest = await testGuestDir();
  const initramfs = (await Deno.stat(`${guest}/initramfs.cpio`)).size / 2 ** 20;
  ok(initramfs <= BUDGETS.initramfsMib, `initramfs.cpio ${initramfs.toFixed(2)} MiB`);
  const built = JSON.parse(await Deno.readTextFile(`${guest}/guest.json`));
  const bundle = Number(built.inputs?.bundle?.size) / 1024;
  ok(bundle <= BUDGETS.guestBundleKib, `the guest's bundle is ${bundle.toFixed(0)} KiB`);
  const daemon = await startDaemon();
  try {
    await installHttpd(daemon, "app");
    await volarOk(daemon, "vms", "create", "app", "--plugin", "app", "--json");
    const got = JSON.parse(await volarOk(daemon, "vms", "get", "app", "--timeline", "--json"));
    const timeline = VmRecord.shape.timeline.parse(got.timeline);
    ok(timeline !== null, "kestrel reported a timeline");
    for (const phase of TIMELINE_PHASES) {
      ok(timeline[phase] !== undefined, `${phase} missing: ${JSON.stringify(timeline)}`);
    }
    for (const chain of TIMELINE_CHAINS) {
      for (let i = 1; i < chain.length; i++) {
        const [before, after] = [chain[i - 1]!, chain[i]!];
        ok(timeline[after]! >= timeline[before]!, `${after} before ${before}`);
      }
    }
    // This appliance's workload is one stage 0 can start: it does, before Deno runs.
    ok(timeline.workload_ms! < timeline.runtime_ms!, `workload not started by stage 0`);
    // Settled: what a user reads a few seconds after the VM runs.
    await new Promise((r) => setTimeout(r, 5_000));
    const stats = GuestStats.parse(
      JSON.parse(await volarOk(daemon, "vms", "stats", "app", "--json")),
    );
    const used = stats.memory.used_kb / 1024;
    const rss = stats.kestrel.rss_kb / 1024;
    console.log(
      `guest used ${used.toFixed(1)} MiB, kestrel RSS ${rss.toFixed(1)} MiB (anon ${
        (stats.kestrel.anon_kb / 1024).toFixed(1)
      }, file ${(stats.kestrel.file_kb / 1024).toFixed(1)}), peak ${
        (stats.kestrel.hwm_kb / 1024).toFixed(1)
      } MiB; timeline ${JSON.stringify(timeline)}`,
    );
    ok(used <= BUDGETS.guestUsedMib, `guest memory in use ${used.toFixed(1)} MiB`);
    ok(rss <= BUDGETS.kestrelRssMib, `kestrel RSS ${rss.toFixed(1)} MiB`);
    await volarOk(daemon, "vms", "delete", "app");
  } finally {
    await daemon.dispose();
  }
});
