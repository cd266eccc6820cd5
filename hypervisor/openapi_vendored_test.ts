// The VMMs' API documents are vendored (with their licence files) in
// hypervisor/<vmm>/openapi/, copied byte for byte from the shared reference data; when that
// checkout is beside the repository, the copies must still match it.
import { deepEqual, ok } from "node:assert/strict";
import { sharedDir, vendoredDocument } from "./testing/openapi_contract.ts";

const VENDORED = [
  {
    vmm: "Cloud Hypervisor",
    dir: "cloud_hypervisor/openapi",
    shared: "cloud-hypervisor",
    notices: ["LICENSE-Apache-2.0.txt", "LICENSE-BSD-3-Clause.txt", "REUSE-dep5.txt"],
  },
  {
    vmm: "Firecracker",
    dir: "firecracker/openapi",
    shared: "firecracker",
    notices: ["LICENSE", "NOTICE", "THIRD-PARTY"],
  },
];

async function fileNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.push(entry.name);
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const shared = sharedDir();
const hasShared = await exists(shared);

for (const { vmm, dir, shared: sharedName, notices } of VENDORED) {
  const vendored = vendoredDocument(dir);

  Deno.test(`vendored ${vmm} API documents carry their README and licence files`, async () => {
    const names = await fileNames(vendored);
    for (const name of ["README.md", "openapi.yaml", ...notices]) {
      ok(names.includes(name), `${dir}/${name}`);
    }
  });

  Deno.test({
    name: `vendored ${vmm} API documents match ../shared/${sharedName}` +
      (hasShared ? "" : ` (skipped: no ../shared checkout at ${shared})`),
    ignore: !hasShared,
    fn: async () => {
      const source = `${shared}/${sharedName}`;
      const names = await fileNames(source);
      deepEqual(await fileNames(vendored), names, `the files of ${dir} and ${source}`);
      for (const name of names) {
        const [ours, theirs] = await Promise.all([
          Deno.readFile(`${vendored}/${name}`),
          Deno.readFile(`${source}/${name}`),
        ]);
        ok(
          ours.length === theirs.length && ours.every((b, i) => b === theirs[i]),
          `${dir}/${name} differs from ${source}/${name}: copy it again`,
        );
      }
    },
  });
}
