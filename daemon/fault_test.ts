import { deepEqual, equal } from "node:assert/strict";
import { FAULT_STEPS } from "./fault.ts";
import { IMAGE_STEPS } from "../images/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Every `.ts` source (tests aside) under `dir`, relative to the repo. */
async function sources(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) { for (const [p, t] of await sources(path)) out.set(p, t); }
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      out.set(path, await Deno.readTextFile(`${ROOT}${path}`));
    }
  }
  return out;
}

Deno.test("FAULT_STEPS: unique steps, each one placed exactly once in the code", async () => {
  const steps = FAULT_STEPS.map((s) => s.step);
  equal(new Set(steps).size, steps.length, "no step twice");
  const code = new Map([...await sources("daemon"), ...await sources("images")]);
  code.delete("daemon/fault.ts"); // its examples name steps too
  const placed = (needle: string) => [...code].filter(([, text]) => text.includes(needle));
  for (const step of steps) {
    const image = step.startsWith("image_") ? step.slice("image_".length) : undefined;
    // Image steps are the image store's `onStep` calls (volantd passes `imageFaultPoint`).
    const needle = image === undefined ? `faultPoint("${step}")` : `onStep?.("${image}")`;
    equal(placed(needle).length, 1, `${needle} in ${placed(needle).map(([p]) => p).join(", ")}`);
  }
  deepEqual(
    steps.filter((s) => s.startsWith("image_")).map((s) => s.slice("image_".length)),
    [...IMAGE_STEPS],
    "the image steps are the image store's, in its order",
  );
});
