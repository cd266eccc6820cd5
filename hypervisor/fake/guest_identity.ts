/**
 * The fake guest's identity and its control port: who the fake kestrel says it is (name,
 * hostname, address, MAC) — taken from the boot config at a boot, carried over by a saved
 * state (a clone resumes as its parent), changed only by an identity sent on the control port
 * (`schema/guest_control.ts`), as the real kestrel does — and whether its NICs are connected.
 *
 * @module
 */
import { decodeBootConfig } from "../../schema/boot_config.ts";
import { IdentityMessage, type IdentityReply } from "../../schema/guest_control.ts";
import { VolantError } from "../../schema/mod.ts";

/** Who the fake guest is. */
export interface FakeGuestIdentity {
  name: string;
  hostname: string;
  ip: string | null;
  mac: string | null;
  /** The last identity generation applied (0: its boot's). */
  generation: number;
  /** Every identity applied, in order (tests look at the entropy and clock). */
  applied: IdentityMessage[];
}

/** The identity a guest booted with this kernel command line has. */
export function bootIdentity(cmdline: string, fallbackName: string): FakeGuestIdentity {
  const boot = decodeBootConfig(cmdline);
  return {
    name: boot?.name ?? fallbackName,
    hostname: boot?.hostname ?? fallbackName,
    ip: boot?.network?.ip ?? null,
    mac: boot?.network?.mac ?? null,
    generation: 0,
    applied: [],
  };
}

/** How the fake guest answers on its control port. */
export type FakeControlBehavior =
  /** Applies the identity and says so (the default). */
  | "apply"
  /** Says it failed. */
  | "fail"
  /** Never answers (the daemon's timeout). */
  | "silent";

/**
 * What the fake kestrel does with a line on its control port: the reply line, or a
 * `timeout` when it does not answer (paused guest, `silent`). Changes `identity` as kestrel
 * would.
 */
export function answerControl(
  identity: FakeGuestIdentity,
  line: string,
  options: { running: boolean; behavior: FakeControlBehavior; timeoutMs: number },
): string {
  const silent = () =>
    new VolantError(
      "timeout",
      `the guest did not answer on its control port within ${options.timeoutMs} ms (fake)`,
    );
  if (!options.running || options.behavior === "silent") throw silent();
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return reply({ kind: "identity_failed", generation: 0, error: "not JSON" });
  }
  const parsed = IdentityMessage.safeParse(json);
  if (!parsed.success) {
    return reply({ kind: "identity_failed", generation: 0, error: "not an identity message" });
  }
  const msg = parsed.data;
  if (options.behavior === "fail") {
    return reply({
      kind: "identity_failed",
      generation: msg.generation,
      error: "network: injected failure (fake)",
    });
  }
  if (msg.generation <= identity.generation) {
    return reply({
      kind: "identity_failed",
      generation: msg.generation,
      error: `stale generation ${msg.generation} (applied ${identity.generation})`,
    });
  }
  identity.name = msg.name;
  identity.hostname = msg.hostname;
  identity.ip = msg.network.ip;
  identity.mac = msg.network.mac ?? identity.mac;
  identity.generation = msg.generation;
  identity.applied.push(msg);
  return reply({
    kind: "identity_applied",
    generation: msg.generation,
    steps: ["entropy", "clock", "hostname", "network", "api"],
    ms: 1,
  });
}

function reply(r: IdentityReply): string {
  return JSON.stringify(r);
}
