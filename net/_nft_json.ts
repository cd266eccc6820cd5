/**
 * Reading `nft -j list table` output: the chains of one table with their hooks, and each rule
 * as a short, version-independent signature (`ip saddr == 10.0.0.0/24 ; oifname != vbr0 ;
 * masquerade`) plus its comment and raw expressions. Pure: no processes. Internal to `nft.ts`.
 *
 * @module
 */

/** A base chain's definition as nft reports it. */
export interface ChainState {
  /** `nat` or `filter`. */
  type: string | undefined;
  /** `prerouting`, `output`, `postrouting`, `forward`, … */
  hook: string | undefined;
  /** Numeric priority. */
  prio: number | undefined;
  /** `accept` or `drop`. */
  policy: string | undefined;
  /** The chain's rules in order. */
  rules: RuleState[];
}

/** One rule. */
export interface RuleState {
  /** The rule's comment, if any. */
  comment: string | undefined;
  /** Its statements as a signature, see {@linkcode ruleSignature}. */
  signature: string;
  /** The raw JSON statements. */
  expr: unknown[];
}

/** The chains of one table, by name (empty map: the table exists but has no chains). */
export type TableState = Map<string, ChainState>;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A compact text for one JSON expression operand. */
function term(value: unknown): string {
  if (typeof value === "string" || typeof value === "number") return String(value);
  if (Array.isArray(value)) return `[${value.map(term).join(",")}]`;
  if (!isObject(value)) return JSON.stringify(value);
  const [key] = Object.keys(value);
  const inner = key === undefined ? undefined : value[key];
  if (key === "payload" && isObject(inner)) return `${inner.protocol} ${inner.field}`;
  if (key === "meta" && isObject(inner)) return String(inner.key);
  if (key === "ct" && isObject(inner)) return `ct ${inner.key}`;
  if (key === "prefix" && isObject(inner)) return `${inner.addr}/${inner.len}`;
  if (key === "fib" && isObject(inner)) {
    const flags = Array.isArray(inner.flags) ? inner.flags.join(",") : String(inner.flags);
    return `fib ${flags} ${inner.result}`;
  }
  if (key === "set" && Array.isArray(inner)) return `{${inner.map(term).join(",")}}`;
  return JSON.stringify(value);
}

/** A compact text for one statement. */
function statement(value: unknown): string {
  if (!isObject(value)) return JSON.stringify(value);
  const [key] = Object.keys(value);
  const inner = key === undefined ? undefined : value[key];
  if (key === "match" && isObject(inner)) {
    // `ct status dnat` is listed with op "in" (a flag test); treat it as equality.
    const op = inner.op === "in" ? "==" : String(inner.op);
    return `${term(inner.left)} ${op} ${term(inner.right)}`;
  }
  if ((key === "dnat" || key === "snat") && isObject(inner)) {
    return `${key} ${inner.addr}${inner.port === undefined ? "" : `:${inner.port}`}`;
  }
  if (key !== undefined && inner === null) return key; // accept, drop, masquerade
  return JSON.stringify(value);
}

/**
 * The signature of a rule's statements: each statement as compact text, joined by ` ; `.
 * `ct status dnat` reads `ct status == dnat`; string quotes and JSON noise are dropped.
 *
 * @example
 * ```ts
 * import { ruleSignature } from "./_nft_json.ts";
 * const sig = ruleSignature([
 *   { match: { op: "==", left: { meta: { key: "iifname" } }, right: "vbr0" } },
 *   { accept: null },
 * ]);
 * console.assert(sig === "iifname == vbr0 ; accept");
 * ```
 */
export function ruleSignature(expr: readonly unknown[]): string {
  return expr.filter((e) => !(isObject(e) && "counter" in e)).map(statement).join(" ; ");
}

/**
 * Parses `nft -j list table <family> <name>` output into its chains and rules.
 *
 * @example
 * ```ts
 * import { parseTable } from "./_nft_json.ts";
 * const state = parseTable(JSON.stringify({ nftables: [
 *   { chain: { table: "volant", name: "c", type: "nat", hook: "output", prio: -100, policy: "accept" } },
 *   { rule: { chain: "c", comment: "web", expr: [{ accept: null }] } },
 * ] }), "volant");
 * console.assert(state.get("c")?.rules[0]?.comment === "web");
 * ```
 */
export function parseTable(text: string, table: string): TableState {
  const doc = JSON.parse(text) as unknown;
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const chains: TableState = new Map();
  for (const item of items) {
    if (!isObject(item)) continue;
    const chain = item.chain;
    if (isObject(chain) && chain.table === table && typeof chain.name === "string") {
      chains.set(chain.name, {
        type: typeof chain.type === "string" ? chain.type : undefined,
        hook: typeof chain.hook === "string" ? chain.hook : undefined,
        prio: typeof chain.prio === "number" ? chain.prio : undefined,
        policy: typeof chain.policy === "string" ? chain.policy : undefined,
        rules: [],
      });
    }
  }
  for (const item of items) {
    if (!isObject(item) || !isObject(item.rule)) continue;
    const rule = item.rule;
    if (rule.table !== undefined && rule.table !== table) continue;
    const chain = typeof rule.chain === "string" ? chains.get(rule.chain) : undefined;
    if (chain === undefined) continue;
    const expr = Array.isArray(rule.expr) ? rule.expr : [];
    chain.rules.push({
      comment: typeof rule.comment === "string" ? rule.comment : undefined,
      signature: ruleSignature(expr),
      expr,
    });
  }
  return chains;
}

/** What a DNAT rule says: the destination port it matches and where it sends the traffic. */
export interface DnatRule {
  protocol: "tcp" | "udp";
  port: number;
  toAddr: string;
  toPort: number;
}

/**
 * Reads a `… tcp dport N dnat to A:P` rule's protocol, port and target; `undefined` for any
 * other rule.
 *
 * @example
 * ```ts
 * import { readDnat } from "./_nft_json.ts";
 * const rule = readDnat([
 *   { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 8080 } },
 *   { dnat: { addr: "192.168.127.2", port: 80 } },
 * ]);
 * console.assert(rule?.toPort === 80 && rule.port === 8080);
 * ```
 */
export function readDnat(expr: readonly unknown[]): DnatRule | undefined {
  let protocol: "tcp" | "udp" | undefined;
  let port: number | undefined;
  let toAddr: string | undefined;
  let toPort: number | undefined;
  for (const e of expr) {
    if (!isObject(e)) continue;
    const match = e.match;
    if (isObject(match) && match.op === "==" && isObject(match.left)) {
      const payload = match.left.payload;
      if (
        isObject(payload) && payload.field === "dport" &&
        (payload.protocol === "tcp" || payload.protocol === "udp") &&
        typeof match.right === "number"
      ) {
        protocol = payload.protocol;
        port = match.right;
      }
    }
    const dnat = e.dnat;
    if (isObject(dnat) && typeof dnat.addr === "string" && typeof dnat.port === "number") {
      toAddr = dnat.addr;
      toPort = dnat.port;
    }
  }
  if (protocol === undefined || port === undefined) return undefined;
  if (toAddr === undefined || toPort === undefined) return undefined;
  return { protocol, port, toAddr, toPort };
}
