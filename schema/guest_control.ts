/**
 * The guest control channel: a serial port the VMM wires to a unix socket in the VM's runtime
 * dir that only volantd reaches (QEMU: a second 16550 UART, the guest's `/dev/ttyS1`; the boot
 * config's `control_device` names it). kestrel opens it from boot, raw and exclusive, for its
 * whole life (`agent/control/tty.ts`). A UART costs the guest nothing (a virtio-serial port
 * cost 8.6 MiB of kernel buffers per VM). It carries one
 * thing today: a **new identity** for a guest resumed from another VM's snapshot (a clone),
 * which still holds its parent's address, MAC, hostname, kestrel secret and RNG state. The
 * daemon sends it while the clone's NIC is disconnected (nothing the guest sends can reach the
 * bridge), kestrel applies it and answers, and only then is the NIC connected.
 *
 * Framing: one JSON object per line (`\n`), each side reads at most
 * {@linkcode CONTROL_MAX_LINE} bytes per line; everything the guest writes is untrusted.
 * Written with `zod/mini` (kestrel imports it).
 *
 * @module
 */
import * as z from "zod/mini";
import { AgentAccess, GuestNetwork } from "./boot_config.ts";

/** Longest line either side reads on the channel (bytes, newline excluded). */
export const CONTROL_MAX_LINE = 64 * 1024;

/** Bytes of fresh host entropy a new identity carries. */
export const IDENTITY_ENTROPY_BYTES = 64;

/** A new identity for a resumed guest (host → guest). */
export const IdentityMessage = z.strictObject({
  kind: z.literal("identity"),
  /** Grows with every identity the daemon hands this guest; kestrel ignores an older one. */
  generation: z.int().check(z.minimum(1)),
  /** The VM's name. */
  name: z.string().check(z.minLength(1), z.maxLength(63)),
  hostname: z.string().check(z.minLength(1), z.maxLength(63)),
  /** The new address, prefix, gateway and MAC for eth0 (the old ones are removed). */
  network: GuestNetwork,
  /** kestrel's port and the new secret: the old secret stops working at once. */
  agent: AgentAccess,
  /** base64 of {@linkcode IDENTITY_ENTROPY_BYTES} random bytes from the host, credited. */
  entropy: z.string().check(z.regex(/^[A-Za-z0-9+/]{86}==$/)),
  /** The host's wall clock (ms since the epoch): the guest's clock is stepped to it. */
  time_ms: z.int().check(z.minimum(0)),
});
/** A new identity for a resumed guest. */
export type IdentityMessage = z.infer<typeof IdentityMessage>;

/** kestrel's answer to an {@linkcode IdentityMessage} (guest → host; untrusted). */
export const IdentityReply = z.union([
  z.strictObject({
    kind: z.literal("identity_applied"),
    generation: z.int(),
    /** What kestrel did, in order (e.g. `entropy`, `clock`, `hostname`, `network`, `api`). */
    steps: z.array(z.string().check(z.maxLength(64))).check(z.maxLength(32)),
    /** Milliseconds kestrel spent. */
    ms: z.number().check(z.minimum(0)),
  }),
  z.strictObject({
    kind: z.literal("identity_failed"),
    generation: z.int(),
    /** Why, in kestrel's words (shown to the user, capped). */
    error: z.string().check(z.maxLength(2048)),
  }),
]);
/** kestrel's answer to an identity. */
export type IdentityReply = z.infer<typeof IdentityReply>;
