// A file whose name starts with `_` is private to its folder (the Deno std convention): only
// modules in the same folder may import it. Shared helpers are public files (`net/testing.ts`),
// shared code lives in the folder that owns it.
import { deepEqual } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const SKIPPED_DIRS = new Set(["node_modules", ".git", "dist", ".cache", ".toolchain"]);

/** Relative specifiers in `from "…"`, `import "…"`, `import("…")` and `new URL("…", …)`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*|\bnew\s+URL\(\s*)(["'])(\.\.?\/[^"'\s]+)\1/g;

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && !SKIPPED_DIRS.has(entry.name)) yield* sourceFiles(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

/** `file:line: specifier` for every import of another folder's `_` file in `source`. */
export function privateImports(path: string, source: string): string[] {
  const out: string[] = [];
  const dir = dirname(path);
  for (const [i, line] of source.split("\n").entries()) {
    for (const m of line.matchAll(SPECIFIER)) {
      const specifier = m[2]!;
      const target = new URL(specifier, `file://${path}`).pathname;
      const base = target.slice(target.lastIndexOf("/") + 1);
      if (base.startsWith("_") && dirname(target) !== dir) {
        out.push(`${path.slice(ROOT.length + 1)}:${i + 1}: ${specifier}`);
      }
    }
  }
  return out;
}

Deno.test("privateImports() flags a `_` file of another folder, not one of the same folder", () => {
  // Written with backquotes so that this file does not flag itself.
  const source = [
    "import { a } from `./_same.ts`;",
    "import { b } from `../other/_private.ts`;",
    "} from `./sub/_deeper.ts`;",
    "const url = new URL(`../_fixture.ts`, import.meta.url);",
    "await import(`./public.ts`);",
  ].join("\n").replaceAll("`", '"');
  deepEqual(privateImports(`${ROOT}/pkg/mod.ts`, source), [
    "pkg/mod.ts:2: ../other/_private.ts",
    "pkg/mod.ts:3: ./sub/_deeper.ts",
    "pkg/mod.ts:4: ../_fixture.ts",
  ]);
});

Deno.test("no module imports another folder's _private.ts file", async () => {
  const offending: string[] = [];
  for await (const path of sourceFiles(ROOT)) {
    offending.push(...privateImports(path, await Deno.readTextFile(path)));
  }
  if (offending.length > 0) {
    throw new Error(
      `${offending.length} imports of another folder's private file (make it public, or move ` +
        `the code to the folder that uses it):\n  ${offending.sort().join("\n  ")}`,
    );
  }
});
