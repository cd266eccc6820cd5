/**
 * The guest's network, configured by kestrel itself (the guest kernel ignores `ip=`): `lo` up,
 * the NIC found by its MAC (else `eth0`) once it appears, brought up, given `ip/prefix`, and
 * the default route via the gateway. Reading links goes through sysfs; changes go through the
 * same rtnetlink code the daemon uses on the host (`net/netlink`), whose errors name the errno.
 *
 * @module
 */
import type { GuestNetwork } from "../schema/boot_config.ts";
import { VolantError } from "../schema/error.ts";
import { cidrContains, formatIpv4, networkOf, parseIpv4 } from "../net/ipv4.ts";
import { formatMac, parseMac } from "../net/mac.ts";
import { deleteAddress, ensureAddress, listAddresses } from "../net/netlink/address.ts";
import { setLink, setLinkDown, setLinkUp } from "../net/netlink/link.ts";
import { addRoute, deleteRoute } from "../net/netlink/route.ts";
import { NetlinkError } from "../net/netlink/error.ts";
import type { System } from "./system.ts";

/** How long kestrel waits for the NIC to appear, in ms of the guest's clock. */
export const NIC_TIMEOUT_MS = 5000;
/** How often it looks for the NIC while waiting, in ms. */
export const NIC_POLL_MS = 20;
/** The NIC kestrel uses when the boot config names no MAC. */
export const DEFAULT_NIC = "eth0";

/** A network link as kestrel sees it: its name and hardware address. */
export interface NicInfo {
  /** Interface name (`eth0`). */
  name: string;
  /** Lowercase `aa:bb:…` hardware address, when it has one. */
  mac: string | undefined;
}

/** What kestrel does to the machine's network; the real one is {@linkcode realNetOps}. */
export interface NetOps {
  /** The links present now. */
  links(): Promise<NicInfo[]>;
  /** Brings link `name` up. */
  up(name: string): void;
  /** Adds IPv4 `cidr` to `link`; no error when it is already there. */
  addAddress(link: string, cidr: string): void;
  /** Adds the default route via `gateway` out of `dev`. */
  addDefaultRoute(gateway: string, dev: string): void;
  /** Brings link `name` down. */
  down(name: string): void;
  /** Sets link `name`'s hardware address; throws a `NetlinkError` (`EBUSY` when it must be down). */
  setMac(name: string, mac: string): void;
  /** The IPv4 addresses on `link`, as `ip/prefix`. */
  ipv4Addresses(link: string): string[];
  /** Removes IPv4 `cidr` from `link`. */
  deleteAddress(link: string, cidr: string): void;
  /**
   * Removes every default route, then adds the one via `gateway` out of `dev` (none when
   * `gateway` is undefined).
   */
  replaceDefaultRoute(gateway: string | undefined, dev: string): void;
}

/** A validated {@linkcode GuestNetwork}. */
export interface NetworkPlan {
  /** The guest's address (`192.168.127.10`). */
  ip: string;
  /** Its prefix length. */
  prefix: number;
  /** `ip/prefix`. */
  cidr: string;
  /** The default gateway, when there is one. */
  gateway: string | undefined;
  /** The NIC's MAC, lowercase, when the boot config gives it. */
  mac: string | undefined;
}

/** The network kestrel configured (or, in a dry run, would configure). */
export interface ConfiguredNetwork extends NetworkPlan {
  /** The NIC's name (`eth0`); in a dry run, a description of the NIC it would use. */
  nic: string;
  /** The NIC's actual MAC, when known. */
  nicMac: string | undefined;
}

function invalid(field: string, message: string, value: unknown): VolantError {
  return new VolantError("invalid_argument", `${field}: ${message}`, { field, value });
}

/**
 * Validates the boot config's network section; throws `invalid_argument` naming the field
 * (`network.gateway: 10.0.1.1 is not in 10.0.0.0/24`).
 *
 * @example
 * ```ts
 * import { planNetwork } from "./network.ts";
 * const plan = planNetwork({ ip: "10.0.0.10", prefix: 24, gateway: "10.0.0.1", mac: "52:54:00:AA:BB:CC" });
 * console.assert(plan.cidr === "10.0.0.10/24" && plan.mac === "52:54:00:aa:bb:cc");
 * ```
 */
export function planNetwork(net: GuestNetwork): NetworkPlan {
  const address = parseIpv4(net.ip, "network.ip");
  if (!Number.isInteger(net.prefix) || net.prefix < 1 || net.prefix > 32) {
    throw invalid("network.prefix", "must be an integer from 1 to 32", net.prefix);
  }
  const subnet = networkOf(address, net.prefix);
  let gateway: string | undefined;
  if (net.gateway !== undefined) {
    const gw = parseIpv4(net.gateway, "network.gateway");
    const where = `${formatIpv4(subnet.network)}/${subnet.prefix}`;
    if (!cidrContains(subnet, gw)) {
      throw invalid("network.gateway", `${net.gateway} is not in ${where}`, net.gateway);
    }
    if (gw === address) {
      throw invalid("network.gateway", `${net.gateway} is the guest's own address`, net.gateway);
    }
    gateway = formatIpv4(gw);
  }
  const ip = formatIpv4(address);
  return {
    ip,
    prefix: net.prefix,
    cidr: `${ip}/${net.prefix}`,
    gateway,
    mac: net.mac === undefined ? undefined : formatMac(parseMac(net.mac, "network.mac")),
  };
}

/**
 * The NIC to configure among `links`: the one with MAC `mac` (lowercase) when given, else
 * {@linkcode DEFAULT_NIC}; `undefined` when it is not there (yet).
 *
 * @example
 * ```ts
 * import { chooseNic } from "./network.ts";
 * const links = [{ name: "lo", mac: "00:00:00:00:00:00" }, { name: "eth1", mac: "02:00:00:00:00:07" }];
 * console.assert(chooseNic(links, "02:00:00:00:00:07") === "eth1");
 * console.assert(chooseNic(links) === undefined);
 * ```
 */
export function chooseNic(links: readonly NicInfo[], mac?: string): string | undefined {
  if (mac === undefined) return links.find((l) => l.name === DEFAULT_NIC)?.name;
  return links.find((l) => l.mac === mac && l.name !== "lo")?.name;
}

/**
 * `the NIC with MAC 52:…` or `eth0`: the NIC a plan asks for, in words.
 *
 * @example
 * ```ts
 * import { planNetwork, wantedNic } from "./network.ts";
 * console.assert(wantedNic(planNetwork({ ip: "10.0.0.2", prefix: 24 })) === "eth0");
 * ```
 */
export function wantedNic(plan: NetworkPlan): string {
  return plan.mac === undefined ? DEFAULT_NIC : `the NIC with MAC ${plan.mac}`;
}

/**
 * The console line kestrel prints once the network is up: `eth0 10.0.0.10/24 via 10.0.0.1`.
 *
 * @example
 * ```ts
 * import { networkLine, planNetwork } from "./network.ts";
 * const plan = planNetwork({ ip: "10.0.0.10", prefix: 24, gateway: "10.0.0.1" });
 * console.assert(networkLine("eth0", plan) === "eth0 10.0.0.10/24 via 10.0.0.1");
 * ```
 */
export function networkLine(nic: string, plan: NetworkPlan): string {
  return `${nic} ${plan.cidr}${plan.gateway === undefined ? "" : ` via ${plan.gateway}`}`;
}

/**
 * The steps of a plan in words, as a dry run prints them (each after `would `).
 *
 * @example
 * ```ts
 * import { planNetwork, planSteps } from "./network.ts";
 * const steps = planSteps(planNetwork({ ip: "10.0.0.10", prefix: 24 }), 5000);
 * console.assert(steps[0] === "bring lo up" && steps.at(-1) === "add 10.0.0.10/24 to eth0");
 * ```
 */
export function planSteps(plan: NetworkPlan, timeoutMs: number): string[] {
  const nic = wantedNic(plan);
  return [
    "bring lo up",
    `wait up to ${timeoutMs} ms for ${nic}`,
    `bring ${nic} up`,
    `add ${plan.cidr} to ${nic}`,
    ...(plan.gateway === undefined ? [] : [`add the default route via ${plan.gateway} on ${nic}`]),
  ];
}

function describeLinks(links: readonly NicInfo[]): string {
  if (links.length === 0) return "none";
  return links.map((l) => l.mac === undefined ? l.name : `${l.name} ${l.mac}`).join(", ");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the NIC of `plan` appears; resolves to its name and MAC. Throws
 * `ENODEV: no NIC … appeared within … ms (links: …)` after `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * import { planNetwork, realNetOps, waitForNic } from "./network.ts";
 * const nic = await waitForNic(realNetOps(), planNetwork({ ip: "10.0.0.2", prefix: 24 }), 5000);
 * ```
 */
export async function waitForNic(
  ops: NetOps,
  plan: NetworkPlan,
  timeoutMs: number,
  pollMs = NIC_POLL_MS,
): Promise<NicInfo> {
  const started = performance.now();
  for (;;) {
    const links = await ops.links();
    const name = chooseNic(links, plan.mac);
    if (name !== undefined) return links.find((l) => l.name === name)!;
    if (performance.now() - started >= timeoutMs) {
      throw new VolantError(
        "network_error",
        `ENODEV: ${plan.mac === undefined ? "no eth0" : `no NIC with MAC ${plan.mac}`} ` +
          `appeared within ${timeoutMs} ms (links: ${describeLinks(links)}); ` +
          "is the VM's NIC attached, and is virtio_net loaded?",
        { errno: "ENODEV", links, ...(plan.mac === undefined ? {} : { mac: plan.mac }) },
      );
    }
    await sleep(pollMs);
  }
}

/** Options of {@linkcode configureNetwork}. */
export interface ConfigureNetworkOptions {
  /** The operations; default {@linkcode realNetOps}. */
  ops?: NetOps;
  /** How long to wait for the NIC; default {@linkcode NIC_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** How often to look for it; default {@linkcode NIC_POLL_MS}. */
  pollMs?: number;
}

function prefixed(err: unknown): VolantError {
  if (err instanceof VolantError) {
    return new VolantError(err.code, `network: ${err.message}`, err.details, { cause: err });
  }
  return new VolantError("network_error", `network: ${String(err)}`, undefined, { cause: err });
}

/**
 * Configures the guest's network from the boot config: `lo` up, waits for the NIC, brings it
 * up, adds the address and the default route, and logs `eth0 10.0.0.10/24 via 10.0.0.1`.
 * A dry run only logs each step (`dry run: would bring lo up` …) and touches nothing. Throws a
 * {@linkcode VolantError} whose message starts with `network: ` and the errno name.
 *
 * @example
 * ```ts ignore
 * import { configureNetwork } from "./network.ts";
 * import { realSystem } from "./system.ts";
 * await configureNetwork(realSystem(), { ip: "10.0.0.10", prefix: 24, gateway: "10.0.0.1" });
 * ```
 */
export async function configureNetwork(
  system: System,
  net: GuestNetwork,
  options: ConfigureNetworkOptions = {},
): Promise<ConfiguredNetwork> {
  const timeoutMs = options.timeoutMs ?? NIC_TIMEOUT_MS;
  try {
    const plan = planNetwork(net);
    if (system.dryRun) {
      for (const step of planSteps(plan, timeoutMs)) system.log(`dry run: would ${step}`);
      return { ...plan, nic: wantedNic(plan), nicMac: plan.mac };
    }
    const ops = options.ops ?? realNetOps();
    ops.up("lo");
    const nic = await waitForNic(ops, plan, timeoutMs, options.pollMs);
    ops.up(nic.name);
    ops.addAddress(nic.name, plan.cidr);
    if (plan.gateway !== undefined) ops.addDefaultRoute(plan.gateway, nic.name);
    system.log(networkLine(nic.name, plan));
    return { ...plan, nic: nic.name, nicMac: nic.mac };
  } catch (err) {
    throw prefixed(err);
  }
}

/** Where the kernel lists the network links of kestrel's namespace. */
export const SYS_CLASS_NET = "/sys/class/net";

/**
 * The links under `dir` (sysfs' `/sys/class/net`) with their MACs, sorted by name; no FFI.
 *
 * @example
 * ```ts ignore
 * import { readLinks } from "./network.ts";
 * console.log(await readLinks()); // [{ name: "eth0", mac: "52:54:00:12:34:56" }, { name: "lo", … }]
 * ```
 */
export async function readLinks(dir = SYS_CLASS_NET): Promise<NicInfo[]> {
  const out: NicInfo[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const mac = await Deno.readTextFile(`${dir}/${entry.name}/address`).then(
        (t) => t.trim().toLowerCase() || undefined,
        () => undefined,
      );
      out.push({ name: entry.name, mac });
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * The real operations: links from sysfs, changes over rtnetlink (`net/netlink`). The first
 * change opens libc through FFI.
 *
 * @example
 * ```ts ignore
 * import { realNetOps } from "./network.ts";
 * realNetOps().up("lo");
 * ```
 */
export function realNetOps(): NetOps {
  return {
    links: () => readLinks(),
    up: (name) => setLinkUp(name),
    addAddress: (link, cidr) => void ensureAddress(link, cidr),
    // Stage 0 may have configured the network already (from the same boot settings) when it
    // started the workload itself: an existing address or default route is kept.
    addDefaultRoute: (gateway, dev) => {
      try {
        addRoute({ dst: "default", gateway, dev });
      } catch (err) {
        if (!(err instanceof NetlinkError && err.errno === "EEXIST")) throw err;
      }
    },
    down: (name) => setLinkDown(name),
    setMac: (name, mac) => setLink(name, { mac }),
    ipv4Addresses: (link) =>
      listAddresses(link).filter((a) => a.family === "inet").map((a) => a.cidr),
    deleteAddress: (link, cidr) => deleteAddress(link, cidr),
    replaceDefaultRoute: (gateway, dev) => {
      deleteDefaultRoutes();
      if (gateway !== undefined) addRoute({ dst: "default", gateway, dev });
    },
  };
}

/** Most default routes {@linkcode deleteDefaultRoutes} removes (a bound, never reached). */
const MAX_DEFAULT_ROUTES = 64;

/** Deletes default routes of the main table one by one until none is left. */
function deleteDefaultRoutes(): void {
  for (let i = 0; i < MAX_DEFAULT_ROUTES; i++) {
    try {
      deleteRoute({ dst: "default" });
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === "ESRCH") return;
      throw err;
    }
  }
}
