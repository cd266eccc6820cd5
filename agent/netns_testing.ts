/**
 * Test helpers for kestrel's network code against the real kernel: run a Deno script inside a
 * network namespace (a child process under `ip netns exec`), and read `ip -j` output there.
 *
 * @module
 */

/** Runs `script` (TypeScript, `deno eval`) inside namespace `ns`; its stdout and stderr joined. */
export async function evalInNetns(
  ns: string,
  script: string,
): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, out: text };
}

/** `ip -n <ns> -j <args…>`, parsed. */
export async function ipJson(ns: string, ...args: string[]): Promise<unknown> {
  const out = await new Deno.Command("ip", { args: ["-n", ns, "-j", ...args], stdout: "piped" })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
