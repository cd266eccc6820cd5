/**
 * Giving a resumed clone its own identity (issue 18). The guest resumes holding its parent's
 * address, MAC, hostname, kestrel secret and RNG state, with its NICs disconnected by the VMM
 * (nothing it sends leaves the VMM, so the parent's address is never claimed twice on the
 * bridge). The daemon sends kestrel, over the guest control port (`schema/guest_control.ts`;
 * only volantd reaches its socket), the VM's own name, address, MAC, a fresh secret, 64 bytes
 * of host entropy and the host's clock; kestrel applies them and answers; only then are the
 * NICs connected, and the VM counts as `running` once kestrel answers at the new address with
 * the new secret (the usual readiness watcher).
 *
 * The reply is untrusted: one line, at most `CONTROL_MAX_LINE` bytes, validated; a refusal, a
 * malformed reply or none within the deadline fails the launch (the caller ends the VMM).
 *
 * @module
 */
import {
  CONTROL_MAX_LINE,
  IDENTITY_ENTROPY_BYTES,
  type IdentityMessage,
  IdentityReply,
} from "../../schema/guest_control.ts";
import { type AgentAccess, VolantError } from "../../schema/mod.ts";
import type { VmmHandle } from "../../hypervisor/mod.ts";
import type { VmRow } from "../store/mod.ts";
import type { GuestNic } from "./_network.ts";
import type { VmRuntime } from "./_runtime.ts";

function base64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/** The identity message for VM `row` on `nic` with kestrel's new `agent` access. */
export function identityMessage(
  row: VmRow,
  nic: GuestNic,
  agent: AgentAccess,
  generation: number,
  nowMs: number,
): IdentityMessage {
  return {
    kind: "identity",
    generation,
    name: row.name,
    hostname: row.name,
    network: { ip: nic.ip, prefix: nic.prefix, gateway: nic.gateway, mac: nic.mac },
    agent,
    entropy: base64(crypto.getRandomValues(new Uint8Array(IDENTITY_ENTROPY_BYTES))),
    time_ms: Math.round(nowMs),
  };
}

/**
 * Sends the clone its identity and connects its NICs once kestrel applied it. Throws
 * `unsupported` when the driver has no control port, `vmm_failed` on a refusal or a malformed
 * reply, `timeout` when kestrel does not answer.
 */
export async function giveIdentity(
  rt: VmRuntime,
  handle: VmmHandle,
  message: IdentityMessage,
): Promise<void> {
  const driver = rt.driver;
  if (driver.guestControl === undefined || driver.connectNics === undefined) {
    throw new VolantError(
      "unsupported",
      `the ${driver.name} driver has no guest control port: it cannot give a clone its own ` +
        "identity (QEMU can)",
      { hypervisor: driver.name },
    );
  }
  const started = performance.now();
  const line = await driver.guestControl(handle, JSON.stringify(message), {
    timeoutMs: rt.config.readyMs, // a few syscalls in the guest, however slow it runs
    maxBytes: CONTROL_MAX_LINE,
  });
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    json = undefined;
  }
  const reply = IdentityReply.safeParse(json);
  if (!reply.success || reply.data.generation !== message.generation) {
    throw new VolantError(
      "vmm_failed",
      `VM ${message.name}: kestrel's answer to its new identity is not one ` +
        `(${JSON.stringify(line.slice(0, 120))})`,
      { vm: message.name },
    );
  }
  if (reply.data.kind === "identity_failed") {
    throw new VolantError(
      "vmm_failed",
      `VM ${message.name}: kestrel could not take its new identity: ${reply.data.error}`,
      { vm: message.name },
    );
  }
  await driver.connectNics(handle);
  rt.logger.info("clone identity applied", {
    vm: message.name,
    ip: message.network.ip,
    generation: message.generation,
    steps: reply.data.steps,
    guest_ms: reply.data.ms,
    ms: Math.round(performance.now() - started),
  });
}
