import assert from "node:assert/strict";
import { kernelTest, withTestNamespace } from "../testing.ts";
import { withNetns } from "../netns.ts";
import { createBridge } from "./create_link.ts";
import { RTM_GETLINK, RTM_NEWLINK } from "./_constants.ts";
import { MessageBuilder, writeIfInfoMsg } from "./_message.ts";
import { NetlinkSocket } from "./_socket.ts";

kernelTest("a netlink socket opened inside withNetns() keeps that namespace", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => createBridge("vbr-x"));
    const sock = withNetns(ns, () => NetlinkSocket.open());
    try {
      const links = sock.dump(writeIfInfoMsg(new MessageBuilder(RTM_GETLINK), {}))
        .filter((m) => m.type === RTM_NEWLINK).length;
      assert.equal(links, 2, "lo and vbr-x, seen from the root thread through the socket");
    } finally {
      sock.close();
    }
  });
});
