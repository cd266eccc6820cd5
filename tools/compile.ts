/**
 * `deno task compile`: builds `dist/bin/{volantd,volar,kestrel}` as self-contained executables
 * with `deno compile`. That needs `denort` (Deno's runtime-only binary): Deno downloads it from
 * dl.deno.land, or uses the file named by `DENORT_BIN` when set (the offline/release path).
 * Where neither is possible, use `./volant build` (the Deno runtime running the bundle).
 *
 * @module
 */

const ROLES = ["volantd", "volar", "kestrel"] as const;

/** Builds one role; returns the command's exit code and stderr. */
async function compileRole(role: string, outDir: string): Promise<{ code: number; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--quiet", "--no-check=remote", "-o", `${outDir}/${role}`, "main.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr) };
}

if (import.meta.main) {
  const outDir = new URL("../dist/bin", import.meta.url).pathname;
  await Deno.mkdir(outDir, { recursive: true });
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) console.error(`Using denort from DENORT_BIN=${denort}`);
  for (const role of ROLES) {
    const { code, err } = await compileRole(role, outDir);
    if (code !== 0) {
      console.error(err.trim());
      console.error(
        `\ncompile: deno compile failed for ${role}. It needs denort: set DENORT_BIN=/path/to/denort` +
          ` (from https://dl.deno.land/release/v${Deno.version.deno}/denort-x86_64-unknown-linux-gnu.zip)` +
          `, or use ./volant build, which installs launchers that run the bundle with the Deno runtime.`,
      );
      Deno.exit(1);
    }
    console.log(`built ${outDir}/${role}`);
  }
}
