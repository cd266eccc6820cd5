/**
 * Accepts several runs' results at once: `deno run -A bench/accept.ts [--into FILE]
 * <results.json>...` pools them (`pool` in `bench/results.ts`: samples pooled, noise bands at
 * least the spread between the runs) and replaces those benchmarks in `bench/accepted.json`
 * (or `--into`), keeping the others. On a shared machine one run can catch a busy or an idle
 * moment; accepting three keeps either from becoming the reference.
 *
 * ```sh
 * for i in 1 2 3; do deno task bench --only events,api --out /tmp/run$i.json; done
 * deno run -A bench/accept.ts /tmp/run1.json /tmp/run2.json /tmp/run3.json
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ACCEPTED_PATH } from "./record.ts";
import { accept, pool, readResults, type Results, writeResults } from "./results.ts";

/** Pools `runs` and merges them into the accepted document at `into` (created if missing). */
export async function acceptRuns(runs: string[], into: string): Promise<Results> {
  const pooled = pool(await Promise.all(runs.map((r) => readResults(r))));
  let accepted: Results | null = null;
  try {
    accepted = await readResults(into);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const merged = accept(accepted, pooled);
  await writeResults(into, merged);
  return pooled;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { into: { type: "string", default: ACCEPTED_PATH } },
  });
  if (positionals.length === 0) {
    console.error("usage: deno run -A bench/accept.ts [--into FILE] <results.json>...");
    Deno.exit(2);
  }
  try {
    const pooled = await acceptRuns(positionals, values.into);
    for (const [name, b] of Object.entries(pooled.benchmarks)) {
      console.log(`accepted ${name} (${b.run.pooled} runs pooled) into ${values.into}`);
    }
  } catch (e) {
    console.error(`bench accept: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
