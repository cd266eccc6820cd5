import assert from "node:assert/strict";
import {
  closeFd,
  ioctlBuffer,
  O_CLOEXEC,
  O_NOCTTY,
  O_RDWR,
  openFd,
  readFd,
  writeFd,
} from "../libc.ts";
import { openRawTty } from "./tty.ts";

const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TIOCGEXCL = 0x80045440;

/** A pseudo-terminal pair: the master fd and the slave's path. */
function openPty(): { master: number; slave: string } {
  const master = openFd("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  ioctlBuffer(master, TIOCSPTLCK, new Uint8Array(4), "TIOCSPTLCK"); // unlock
  const n = new Uint8Array(4);
  ioctlBuffer(master, TIOCGPTN, n, "TIOCGPTN");
  return { master, slave: `/dev/pts/${new DataView(n.buffer).getUint32(0, true)}` };
}

const text = (b: Uint8Array, n: number) => new TextDecoder().decode(b.subarray(0, n));

Deno.test("openRawTty(): exclusive and raw — bytes pass unchanged both ways, nothing echoed", async () => {
  const pty = openPty();
  const port = openRawTty(pty.slave);
  try {
    const excl = new Uint8Array(4);
    const probe = openFd(pty.slave, O_RDWR | O_NOCTTY | O_CLOEXEC); // root may; others EBUSY
    try {
      ioctlBuffer(probe, TIOCGEXCL, excl, "TIOCGEXCL");
    } finally {
      closeFd(probe);
    }
    assert.equal(new DataView(excl.buffer).getInt32(0, true), 1, "TIOCEXCL is set");
    // Host → guest: a line with a CR, no translation, no line editing (^U would erase it).
    await writeFd(pty.master, new TextEncoder().encode('{"a":1}\r\x15x\n'));
    const buf = new Uint8Array(64);
    let got = "";
    while (!got.endsWith("\n")) got += text(buf, (await port.read(buf))!);
    assert.equal(got, '{"a":1}\r\x15x\n');
    // Guest → host: exactly the reply, with no echo of what came in and no CR added.
    await port.write(new TextEncoder().encode("ok\n"));
    const back = new Uint8Array(64);
    let out = "";
    while (!out.endsWith("\n")) out += text(back, await readFd(pty.master, back));
    assert.equal(out, "ok\n");
  } finally {
    port.close();
    port.close();
    closeFd(pty.master);
  }
});

Deno.test("openRawTty(): a path that is not a terminal is refused naming the call", () => {
  assert.throws(() => openRawTty("/dev/null"), /TIOCEXCL|Inappropriate ioctl/);
  assert.throws(() => openRawTty("/dev/no-such-tty"), /open \/dev\/no-such-tty/);
});
