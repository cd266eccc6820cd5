import assert from "node:assert/strict";
import {
  align4,
  attrString,
  attrU32,
  attrU8,
  MessageBuilder,
  parseAttrs,
  parseMessages,
  readDone,
  readError,
  readIfAddrMsg,
  readIfInfoMsg,
  readRtMsg,
  writeIfAddrMsg,
  writeIfInfoMsg,
  writeRtMsg,
} from "./_message.ts";
import { NLA_F_NESTED, NLM_F_ACK_TLVS, NLMSG_DONE, NLMSG_ERROR } from "./_constants.ts";

Deno.test("align4() rounds up to 4", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 8].map(align4), [0, 4, 4, 4, 4, 8, 8]);
});

Deno.test("MessageBuilder writes nlmsghdr, body and padded attributes", () => {
  const msg = writeIfInfoMsg(new MessageBuilder(16, 0x600), { index: 7, flags: 1, change: 1 })
    .flags(0x5)
    .string(3, "br0") // 4 + 4 bytes: "br0\0"
    .string(3, "abcd") // 4 + 5 bytes, padded to 12
    .finish(42);
  const dv = new DataView(msg.buffer);
  assert.equal(msg.length, 16 + 16 + 8 + 12);
  assert.equal(dv.getUint32(0, true), msg.length);
  assert.equal(dv.getUint16(4, true), 16);
  assert.equal(dv.getUint16(6, true), 0x605);
  assert.equal(dv.getUint32(8, true), 42);
  assert.equal(dv.getUint16(40, true), 9, "rtattr length is unpadded");
  assert.deepEqual([...msg.subarray(44, 52)], [97, 98, 99, 100, 0, 0, 0, 0]);
});

Deno.test("MessageBuilder nests attributes and parseAttrs() reads them back", () => {
  const b = new MessageBuilder(16);
  b.u32(0).begin(18).string(1, "veth").begin(2).begin(1, false).u32(0xdeadbeef).end().end().end();
  b.attrU32(4, 1500);
  const [m] = parseMessages(b.finish(1));
  assert.ok(m !== undefined);
  const top = parseAttrs(m.payload.subarray(4));
  assert.equal(attrU32(top, 4), 1500);
  const nest = m.payload.subarray(4);
  assert.equal(new DataView(nest.buffer, nest.byteOffset).getUint16(2, true), 18 | NLA_F_NESTED);
  const info = parseAttrs(top.get(18)!);
  assert.equal(attrString(info, 1), "veth");
  const data = parseAttrs(info.get(2)!);
  const peer = data.get(1)!;
  assert.equal(new DataView(peer.buffer, peer.byteOffset).getUint32(0, true), 0xdeadbeef);
});

Deno.test("MessageBuilder grows past its initial buffer", () => {
  const b = new MessageBuilder(16);
  for (let i = 0; i < 200; i++) b.attrU32(1, i);
  const msg = b.finish(0);
  assert.equal(msg.length, 16 + 200 * 8);
  const [m] = parseMessages(msg);
  assert.equal(attrU32(parseAttrs(m!.payload), 1), 0, "first occurrence wins");
});

Deno.test("MessageBuilder refuses unbalanced nesting", () => {
  assert.throws(() => new MessageBuilder(1).end(), /without begin/);
  assert.throws(() => new MessageBuilder(1).begin(1).finish(0), /open nest/);
});

Deno.test("parseMessages() splits a datagram and refuses truncated messages", () => {
  const a = new MessageBuilder(16).u32(1).finish(1);
  const b = new MessageBuilder(3).u8(9).finish(2); // 17 bytes of payload → padded to 20
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  const msgs = parseMessages(both);
  assert.deepEqual(msgs.map((m) => [m.type, m.seq, m.payload.length]), [[16, 1, 4], [3, 2, 4]]);
  assert.throws(() => parseMessages(both.subarray(0, a.length + 18)), /Malformed/);
});

Deno.test("ifinfomsg, ifaddrmsg and rtmsg round-trip", () => {
  const link = readIfInfoMsg(
    parseMessages(
      writeIfInfoMsg(new MessageBuilder(16), {
        family: 0,
        type: 1,
        index: 5,
        flags: 0x1003,
        change: 1,
      })
        .attrU32(4, 9000).finish(0),
    )[0]!.payload,
  );
  assert.deepEqual({ ...link, attrs: undefined }, {
    family: 0,
    type: 1,
    index: 5,
    flags: 0x1003,
    change: 1,
    attrs: undefined,
  });
  assert.equal(attrU32(link.attrs, 4), 9000);

  const addr = { family: 2, prefixLength: 24, flags: 0x80, scope: 253, index: 3 };
  const a = readIfAddrMsg(
    parseMessages(
      writeIfAddrMsg(new MessageBuilder(20), addr).attr(2, new Uint8Array([10, 0, 0, 1])).finish(0),
    )[0]!
      .payload,
  );
  assert.deepEqual({ ...a, attrs: undefined }, { ...addr, attrs: undefined });
  assert.deepEqual([...a.attrs.get(2)!], [10, 0, 0, 1]);

  const rt = {
    family: 2,
    dstLength: 0,
    srcLength: 0,
    tos: 0,
    table: 254,
    protocol: 3,
    scope: 0,
    type: 1,
    flags: 0,
  };
  const r = readRtMsg(
    parseMessages(writeRtMsg(new MessageBuilder(24), rt).attr(6, new Uint8Array([7])).finish(0))[0]!
      .payload,
  );
  assert.deepEqual({ ...r, attrs: undefined }, { ...rt, attrs: undefined });
  assert.equal(attrU8(r.attrs, 6), 7);
});

Deno.test("readError() reads the errno and the extended ack message", () => {
  // An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK + NETLINK_EXT_ACK:
  // i32 error, the echoed request header (16 bytes), then TLVs.
  const echoed = new MessageBuilder(16).finish(5).subarray(0, 16);
  const msg = new MessageBuilder(NLMSG_ERROR, 0x100 | NLM_F_ACK_TLVS).i32(-17).bytes(echoed)
    .string(1, "Device exists").finish(5);
  const [m] = parseMessages(msg);
  assert.deepEqual(readError(m!), { error: -17, extack: "Device exists" });
  const ack = parseMessages(
    new MessageBuilder(NLMSG_ERROR, 0x100).i32(0).bytes(echoed).finish(5),
  )[0]!;
  assert.deepEqual(readError(ack), { error: 0, extack: undefined });
  const done = parseMessages(
    new MessageBuilder(NLMSG_DONE, NLM_F_ACK_TLVS).i32(-95).string(1, "nope").finish(5),
  )[0]!;
  assert.deepEqual(readDone(done), { error: -95, extack: "nope" });
});
