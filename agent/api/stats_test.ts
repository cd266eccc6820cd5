import { deepEqual, equal, match } from "node:assert/strict";
import { GuestStats } from "../../schema/agent.ts";
import { createRouter } from "./router.ts";
import { apiRoutes } from "./routes.ts";
import { buildStats } from "./stats.ts";

const MEMINFO = "MemTotal:  223000 kB\nMemFree:  150000 kB\nMemAvailable:  175000 kB\n" +
  "Cached:  20000 kB\nShmem:  3000 kB\n";
const STATUS = "Name:\tdeno\nVmHWM:\t  61000 kB\nVmRSS:\t  50000 kB\nRssAnon:\t  18000 kB\n" +
  "RssFile:\t  31000 kB\nRssShmem:\t  1000 kB\n";

Deno.test("GET /v1/stats: guest memory in use and kestrel's RSS split by kind", async () => {
  const files: Record<string, string> = {
    "/proc/uptime": "6.25 3.00\n",
    "/proc/meminfo": MEMINFO,
    "/proc/self/status": STATUS,
  };
  const router = createRouter(
    apiRoutes({ name: "web", hostname: "web", status: "ok", ip: null, mac: null }, {
      readProc: (path) => Promise.resolve(files[path]!),
    }),
  );
  const res = await router(new Request("http://guest/v1/stats"));
  equal(res.status, 200);
  const stats = GuestStats.parse(await res.json());
  deepEqual(stats, {
    uptime_ms: 6250,
    memory: {
      total_kb: 223000,
      available_kb: 175000,
      used_kb: 48000,
      free_kb: 150000,
      cached_kb: 20000,
      shmem_kb: 3000,
    },
    kestrel: { rss_kb: 50000, hwm_kb: 61000, anon_kb: 18000, file_kb: 31000, shmem_kb: 1000 },
  });
});

Deno.test("buildStats: a /proc file without its key line is an internal error naming it", () => {
  try {
    buildStats("1 1", "MemTotal: 1 kB\n", STATUS);
    throw new Error("no error");
  } catch (err) {
    match((err as Error).message, /\/proc\/meminfo has no MemAvailable line/);
  }
});
