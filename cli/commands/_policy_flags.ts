/**
 * The network-policy flags of `volar vms create` and `volar vms policy` (`--egress`,
 * `--allow-egress`, `--allow-from`, `--allow-host-port`), parsed with the shared schemas, and
 * the policy as `volar vms get` prints it.
 *
 * @module
 */
import { InvalidArgumentError } from "commander";
import {
  DeploymentName,
  EgressRule,
  type HostPortRule,
  Ipv4Cidr,
  type NetworkPolicy,
  type NetworkPolicyFields,
  VmName,
} from "../../schema/mod.ts";

const PORT = /^[0-9]{1,5}$/;

function port(text: string, value: string, example: string): number {
  const n = Number(text);
  if (!PORT.test(text) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(
      `the port in '${value}' must be a number from 1 to 65535 (e.g. ${example})`,
    );
  }
  return n;
}

function protocol(text: string | undefined, value: string): "tcp" | "udp" {
  const p = text ?? "tcp";
  if (p !== "tcp" && p !== "udp") {
    throw new InvalidArgumentError(
      `protocol '${p}' in '${value}' is not supported; use tcp or udp`,
    );
  }
  return p;
}

/**
 * Parses one `--allow-egress` value: `CIDR[:PORT[/tcp|udp]]`, where CIDR may be one address.
 *
 * @example
 * ```ts
 * import { parseEgressRule } from "./_policy_flags.ts";
 * const r = parseEgressRule("198.51.100.0/24:443");
 * console.assert(r.cidr === "198.51.100.0/24" && r.port === 443 && r.protocol === "tcp");
 * console.assert(parseEgressRule("203.0.113.7").port === undefined);
 * ```
 */
export function parseEgressRule(value: string): EgressRule {
  const m = /^([^:]+)(?::([^/]*)(?:\/(.*))?)?$/.exec(value.trim());
  if (!m) {
    throw new InvalidArgumentError(
      "expected CIDR[:PORT[/udp]], e.g. 198.51.100.0/24, 198.51.100.7:443 or 10.0.0.0/8:53/udp",
    );
  }
  const cidr = Ipv4Cidr.safeParse(m[1]);
  if (!cidr.success) {
    throw new InvalidArgumentError(`'${m[1]}' ${cidr.error.issues[0]!.message}`);
  }
  const rule: EgressRule = { cidr: cidr.data };
  if (m[2] !== undefined) {
    rule.port = port(m[2], value, "198.51.100.0/24:443");
    rule.protocol = protocol(m[3], value);
  }
  return EgressRule.parse(rule);
}

/**
 * Parses one `--allow-host-port` value: `PORT[/tcp|udp]`.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./_policy_flags.ts";
 * console.assert(parseHostPort("53/udp").protocol === "udp");
 * console.assert(parseHostPort("8125").protocol === "tcp");
 * ```
 */
export function parseHostPort(value: string): HostPortRule {
  const m = /^([^/]*)(?:\/(.*))?$/.exec(value.trim())!;
  return { port: port(m[1]!, value, "53/udp"), protocol: protocol(m[2], value) };
}

/**
 * Parses one `--allow-from` value: a VM name, or `deployment:<name>` (its replicas).
 *
 * @example
 * ```ts
 * import { parsePeer } from "./_policy_flags.ts";
 * console.assert(parsePeer("web") === "web");
 * console.assert(parsePeer("deployment:web") === "deployment:web");
 * ```
 */
export function parsePeer(value: string): string {
  if (value.startsWith("deployment:")) {
    const d = DeploymentName.safeParse(value.slice("deployment:".length));
    if (!d.success) throw new InvalidArgumentError(d.error.issues[0]!.message);
    return value;
  }
  const result = VmName.safeParse(value);
  if (!result.success) throw new InvalidArgumentError(result.error.issues[0]!.message);
  return result.data;
}

/**
 * Parses `--egress`: `deny`, `allow-internet` (or `allow`).
 *
 * @example
 * ```ts
 * import { parseEgressMode } from "./_policy_flags.ts";
 * console.assert(parseEgressMode("allow") === "allow-internet");
 * ```
 */
export function parseEgressMode(value: string): "allow-internet" | "deny" {
  if (value === "allow" || value === "allow-internet") return "allow-internet";
  if (value === "deny") return value;
  throw new InvalidArgumentError("expected deny or allow-internet");
}

function collect<T>(parse: (value: string) => T) {
  return (value: string, previous: T[] = []): T[] => [...previous, parse(value)];
}

/** Collects repeated `--allow-egress` values. */
export const collectEgressRules: (value: string, previous?: EgressRule[]) => EgressRule[] = collect(
  parseEgressRule,
);
/** Collects repeated `--allow-from` values. */
export const collectPeers: (value: string, previous?: string[]) => string[] = collect(parsePeer);
/** Collects repeated `--allow-host-port` values. */
export const collectHostPorts: (value: string, previous?: HostPortRule[]) => HostPortRule[] =
  collect(parseHostPort);

/** The flags' names and help texts, the same on `vms create` and `vms policy`. */
export const POLICY_OPTIONS = {
  egress: [
    "--egress <mode>",
    "deny or allow-internet: what the guest may reach outside its subnet besides " +
    "--allow-egress (default allow-internet: public addresses, through NAT)",
  ],
  allowEgress: [
    "--allow-egress <cidr[:port[/udp]]>",
    "a destination the guest may reach on top of --egress, e.g. 10.1.0.0/16:5432 (repeatable)",
  ],
  allowFrom: [
    "--allow-from <vm>",
    "a VM (or deployment:<name>, its replicas) that may reach this VM's ports, never " +
    "kestrel's (repeatable)",
  ],
  allowHostPort: [
    "--allow-host-port <port[/udp]>",
    "a port of the host's bridge address the guest may reach, e.g. 53/udp (repeatable)",
  ],
} as const;

/** The policy flags as commander parsed them. */
export interface PolicyFlags {
  egress?: "allow-internet" | "deny";
  allowEgress?: EgressRule[];
  allowFrom?: string[];
  allowHostPort?: HostPortRule[];
}

/**
 * The policy fields the flags set (absent flags: absent fields).
 *
 * @example
 * ```ts
 * import { policyFields } from "./_policy_flags.ts";
 * console.assert(policyFields({ egress: "deny" }).egress === "deny");
 * console.assert(Object.keys(policyFields({})).length === 0);
 * ```
 */
export function policyFields(flags: PolicyFlags): NetworkPolicyFields {
  return {
    ...(flags.egress !== undefined ? { egress: flags.egress } : {}),
    ...(flags.allowEgress !== undefined ? { allow_egress: flags.allowEgress } : {}),
    ...(flags.allowFrom !== undefined ? { allow_from: flags.allowFrom } : {}),
    ...(flags.allowHostPort !== undefined ? { allow_host_ports: flags.allowHostPort } : {}),
  };
}

/**
 * One egress rule as the flag writes it: `198.51.100.0/24:443/tcp`.
 *
 * @example
 * ```ts
 * import { formatEgressRule } from "./_policy_flags.ts";
 * console.assert(formatEgressRule({ cidr: "10.0.0.0/8", port: 53, protocol: "udp" }) === "10.0.0.0/8:53/udp");
 * ```
 */
export function formatEgressRule(rule: EgressRule): string {
  if (rule.port !== undefined) return `${rule.cidr}:${rule.port}/${rule.protocol ?? "tcp"}`;
  return rule.protocol === undefined ? rule.cidr : `${rule.cidr} (${rule.protocol})`;
}

/**
 * The policy as `volar vms get` lists it: `[label, value]` pairs.
 *
 * @example
 * ```ts
 * import { policyPairs } from "./_policy_flags.ts";
 * const pairs = policyPairs({
 *   egress: "deny", allow_egress: [{ cidr: "10.0.0.0/8", port: 53, protocol: "udp" }],
 *   allow_from: [], allow_host_ports: [],
 * });
 * console.assert(pairs[0]![1] === "deny, + 10.0.0.0/8:53/udp");
 * ```
 */
export function policyPairs(policy: NetworkPolicy): [string, string][] {
  const extra = policy.allow_egress.map(formatEgressRule);
  return [
    ["egress", [policy.egress, ...extra.map((e) => `+ ${e}`)].join(", ")],
    ["allow from", policy.allow_from.length === 0 ? "-" : policy.allow_from.join(", ")],
    [
      "host ports",
      policy.allow_host_ports.length === 0
        ? "-"
        : policy.allow_host_ports.map((p) => `${p.port}/${p.protocol}`).join(", "),
    ],
  ];
}
