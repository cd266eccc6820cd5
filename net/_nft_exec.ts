/**
 * Running `nft` (directly, or as `ip netns exec <ns> nft`) and turning its failures into
 * `network_error`s with nft's own message and the fix. Internal to `nft.ts`.
 *
 * @module
 */
import { VolantError } from "../schema/error.ts";
import { parseTable, type TableState } from "./_nft_json.ts";

const INSTALL_HINT = "install it with `apt-get install --no-install-recommends nftables`";

/** What one nft run printed. */
export interface NftResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs nft (through `ip netns exec` when `netns`); throws only when it cannot start. */
export async function nft(
  args: string[],
  netns: string | undefined,
  input?: string,
): Promise<NftResult> {
  const [cmd, argv] = netns === undefined
    ? ["nft", args]
    : ["ip", ["netns", "exec", netns, "nft", ...args]];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args: argv,
      stdin: input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new VolantError(
        "network_error",
        `${cmd} is not installed; ` +
          (cmd === "nft" ? INSTALL_HINT : "install iproute2 (`apt-get install iproute2`)"),
        { command: cmd },
        { cause: err },
      );
    }
    throw err;
  }
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  const stderr = text.decode(out.stderr).trim();
  if (!out.success && /exec of "nft" failed: No such file/.test(stderr)) {
    throw new VolantError("network_error", `nft is not installed; ${INSTALL_HINT}`, {
      command: "nft",
      netns,
    });
  }
  return { ok: out.success, stdout: text.decode(out.stdout), stderr };
}

/** The error for a failed nft run: its stderr, where it ran, and the fix when known. */
export function nftFailure(
  what: string,
  result: NftResult,
  netns: string | undefined,
): VolantError {
  const where = netns === undefined ? "" : ` in network namespace ${netns}`;
  let fix = "";
  if (/Operation not permitted/.test(result.stderr)) fix = " (nftables needs root)";
  else if (/Cannot open network namespace/.test(result.stderr)) {
    fix = " (create it with `ip netns add`)";
  }
  return new VolantError(
    "network_error",
    `nft could not ${what}${where}: ${result.stderr || "no error text"}${fix}`,
    { netns, nft_stderr: result.stderr },
  );
}

/** Table `ip <table>`'s chains, or `undefined` when the table does not exist. */
export async function readTable(
  table: string,
  netns: string | undefined,
): Promise<TableState | undefined> {
  const result = await nft(["-j", "list", "table", "ip", table], netns);
  if (!result.ok) {
    if (/No such file or directory/.test(result.stderr) && /list table/.test(result.stderr)) {
      return undefined;
    }
    throw nftFailure(`list table ip ${table}`, result, netns);
  }
  try {
    return parseTable(result.stdout, table);
  } catch (err) {
    throw new VolantError(
      "network_error",
      `nft printed something that is not JSON for \`nft -j list table ip ${table}\`: ${err}`,
      { netns },
      { cause: err },
    );
  }
}

/** Applies an nft script atomically (`nft -f -`); `what` words the error. */
export async function apply(
  script: string,
  what: string,
  netns: string | undefined,
): Promise<void> {
  const result = await nft(["-f", "-"], netns, script);
  if (!result.ok) throw nftFailure(what, result, netns);
}
