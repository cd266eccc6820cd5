/** sha256 helpers shared by the kernel and image builders. @module */

/** `sha256:<hex>` of a byte array. */
export async function sha256Bytes(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `sha256:<hex>` of a file (streamed through `sha256sum` for large files). */
export async function sha256File(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", {
    args: [path],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`sha256sum ${path}: ${new TextDecoder().decode(out.stderr)}`);
  return "sha256:" + new TextDecoder().decode(out.stdout).split(" ")[0];
}
