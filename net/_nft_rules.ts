/**
 * The rules Volant installs, as nft script text plus the signature `nft -j` reads back for
 * each (see `_nft_json.ts`), and the scripts that make a group of chains hold exactly a set of
 * rules. Pure: no processes. Internal to `nft.ts`.
 *
 * @module
 */
import type { TableState } from "./_nft_json.ts";
import type { PortForward } from "./nft.ts";

/** The table's name (family `ip`). */
export const TABLE = "volant";
const FAMILY_TABLE = `ip ${TABLE}`;

/** A base chain Volant owns. */
export interface ChainDef {
  name: string;
  type: "nat" | "filter";
  hook: "prerouting" | "output" | "postrouting" | "forward";
  prio: number;
}

/** The chains {@linkcode natRules} fill (owned by `ensureNat`). */
export const NAT_CHAINS: readonly ChainDef[] = [
  { name: "nat_postrouting", type: "nat", hook: "postrouting", prio: 100 },
  { name: "nat_forward", type: "filter", hook: "forward", prio: 0 },
];

/** The chains {@linkcode forwardRules} fill (owned by `setPortForwards`). */
export const PF_CHAINS: readonly ChainDef[] = [
  { name: "pf_prerouting", type: "nat", hook: "prerouting", prio: -100 },
  { name: "pf_output", type: "nat", hook: "output", prio: -100 },
  { name: "pf_postrouting", type: "nat", hook: "postrouting", prio: 100 },
  { name: "pf_forward", type: "filter", hook: "forward", prio: 0 },
];

/** A rule to install: nft syntax, and the signature `nft -j` reads back for it. */
export interface RuleDef {
  text: string;
  signature: string;
}

function sameDefinition(state: TableState | undefined, def: ChainDef): boolean {
  const c = state?.get(def.name);
  return c !== undefined && c.type === def.type && c.hook === def.hook && c.prio === def.prio &&
    c.policy === "accept";
}

/**
 * The script that makes `group`'s chains hold exactly `rules` (by chain name): created and
 * flushed when there are rules, deleted (with the table, if nothing else is left) when not.
 */
export function groupScript(
  state: TableState | undefined,
  group: readonly ChainDef[],
  rules: ReadonlyMap<string, readonly RuleDef[]>,
): string {
  const lines: string[] = [];
  const wanted = [...rules.values()].some((r) => r.length > 0);
  if (wanted) {
    lines.push(`add table ${FAMILY_TABLE}`);
    for (const def of group) {
      const chain = `${FAMILY_TABLE} ${def.name}`;
      if (state?.has(def.name) && !sameDefinition(state, def)) {
        lines.push(`flush chain ${chain}`, `delete chain ${chain}`);
      }
      lines.push(
        `add chain ${chain} { type ${def.type} hook ${def.hook} priority ${def.prio}; policy accept; }`,
        `flush chain ${chain}`,
      );
      for (const rule of rules.get(def.name) ?? []) lines.push(`add rule ${chain} ${rule.text}`);
    }
  } else if (state !== undefined) {
    const mine = new Set(group.map((d) => d.name));
    if ([...state.keys()].every((name) => mine.has(name))) {
      lines.push(`delete table ${FAMILY_TABLE}`);
    } else {
      for (const def of group) {
        if (!state.has(def.name)) continue;
        lines.push(`flush chain ${FAMILY_TABLE} ${def.name}`);
        lines.push(`delete chain ${FAMILY_TABLE} ${def.name}`);
      }
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/** Whether the group's chains exist with exactly `rules` (compared by signature). */
export function groupMatches(
  state: TableState | undefined,
  group: readonly ChainDef[],
  rules: ReadonlyMap<string, readonly RuleDef[]>,
): boolean {
  return group.every((def) => {
    const want = rules.get(def.name) ?? [];
    const chain = state?.get(def.name);
    if (want.length === 0) return chain === undefined;
    return sameDefinition(state, def) && chain !== undefined &&
      chain.rules.length === want.length &&
      chain.rules.every((r, i) => r.signature === want[i]!.signature);
  });
}

/** The NAT rules: masquerade leaving through other links, accept to/from the bridge. */
export function natRules(subnet: string, bridge: string): Map<string, RuleDef[]> {
  return new Map([
    ["nat_postrouting", [{
      text:
        `ip saddr ${subnet} oifname != "${bridge}" masquerade comment "volant: NAT for ${subnet}"`,
      signature: `ip saddr == ${subnet} ; oifname != ${bridge} ; masquerade`,
    }]],
    ["nat_forward", [
      { text: `iifname "${bridge}" accept`, signature: `iifname == ${bridge} ; accept` },
      { text: `oifname "${bridge}" accept`, signature: `oifname == ${bridge} ; accept` },
    ]],
  ]);
}

/** The port-forward rules for `forwards` (validated by the caller). */
export function forwardRules(
  forwards: readonly PortForward[],
  bridge: string,
  subnet: string,
): Map<string, RuleDef[]> {
  const pre: RuleDef[] = [];
  const out: RuleDef[] = [];
  const fwd: RuleDef[] = [];
  for (const f of forwards) {
    const to = `${f.guestIp}:${f.guestPort}`;
    const comment = `comment "${f.owner}"`;
    const match = `${f.protocol} dport ${f.hostPort}`;
    const matchSig = `${f.protocol} dport == ${f.hostPort}`;
    // Traffic arriving for one of this host's addresses.
    pre.push({
      text: `fib daddr type local ${match} dnat to ${to} ${comment}`,
      signature: `fib daddr type == local ; ${matchSig} ; dnat ${to}`,
    });
    // Traffic the host sends to one of its own addresses (loopback excluded: the kernel
    // would drop 127.0.0.1-sourced packets routed out the bridge).
    out.push({
      text: `ip daddr != 127.0.0.0/8 fib daddr type local ${match} dnat to ${to} ${comment}`,
      signature: `ip daddr != 127.0.0.0/8 ; fib daddr type == local ; ${matchSig} ; dnat ${to}`,
    });
    fwd.push({
      text: `oifname "${bridge}" ip daddr ${f.guestIp} ${f.protocol} dport ${f.guestPort} ` +
        `ct status dnat accept ${comment}`,
      signature: `oifname == ${bridge} ; ip daddr == ${f.guestIp} ; ` +
        `${f.protocol} dport == ${f.guestPort} ; ct status == dnat ; accept`,
    });
  }
  const post: RuleDef[] = forwards.length === 0 ? [] : [
    // Hairpin: a guest reaching a forward (to itself or a neighbour) through the host's
    // address; without it the reply would go guest-to-guest and skip the reverse NAT.
    {
      text: `oifname "${bridge}" ct status dnat ip saddr ${subnet} masquerade ` +
        `comment "volant: hairpin"`,
      signature: `oifname == ${bridge} ; ct status == dnat ; ip saddr == ${subnet} ; masquerade`,
    },
    // Host-originated: the guest answers the gateway, whatever its routes.
    {
      text: `oifname "${bridge}" ct status dnat fib saddr type local masquerade ` +
        `comment "volant: from the host"`,
      signature: `oifname == ${bridge} ; ct status == dnat ; fib saddr type == local ; masquerade`,
    },
  ];
  return new Map([
    ["pf_prerouting", pre],
    ["pf_output", out],
    ["pf_postrouting", post],
    ["pf_forward", fwd],
  ]);
}
