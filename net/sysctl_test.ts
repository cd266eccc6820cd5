import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { ip, kernelTest, withTestNamespace } from "./testing.ts";
import { rootSnapshot } from "./root_guard.ts";
import { getSysctl, setSysctl, sysctlPath } from "./sysctl.ts";

const ROOT_BEFORE = rootSnapshot();

Deno.test("sysctlPath maps dotted keys, '/' standing for a dot, and refuses the rest", () => {
  assert.equal(sysctlPath("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
  assert.equal(
    sysctlPath("net.ipv4.conf.eth0/100.forwarding"),
    "/proc/sys/net/ipv4/conf/eth0.100/forwarding",
  );
  for (
    const bad of ["", "ip_forward", "net..ipv4", "net.ipv4.conf.a//b.x", "net.../x", "net.a b"]
  ) {
    assert.throws(() => sysctlPath(bad), (err: unknown) => {
      assert.ok(err instanceof VolantError);
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, /is not a dotted name like net\.ipv4\.ip_forward/);
      return true;
    }, bad);
  }
});

kernelTest("setSysctl/getSysctl act on the namespace's own ip_forward only", async () => {
  await withTestNamespace((ns) => {
    const inside = () => ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward").trim();
    assert.equal(getSysctl("net.ipv4.ip_forward", { netns: ns }), "0", "a new namespace: off");
    assert.equal(setSysctl("net.ipv4.ip_forward", "1", { netns: ns }), true);
    assert.equal(inside(), "1", "ip netns exec sees the change");
    assert.equal(getSysctl("net.ipv4.ip_forward", { netns: ns }), "1");
    assert.equal(setSysctl("net.ipv4.ip_forward", "1", { netns: ns }), false, "already 1");
    assert.equal(getSysctl("net.ipv4.ip_forward"), ROOT_BEFORE.ipForward, "root untouched");
    assert.equal(setSysctl("net.ipv4.ip_forward", "0", { netns: ns }), true);
    assert.equal(inside(), "0");
  });
});

kernelTest("sysctl errors name the key and the cause", async () => {
  await withTestNamespace((ns) => {
    assert.throws(
      () => getSysctl("net.ipv4.no_such_knob", { netns: ns }),
      /Cannot read sysctl net\.ipv4\.no_such_knob .*no such parameter in this kernel/,
    );
    assert.throws(
      () => setSysctl("net.ipv4.ip_forward", "1\n0", { netns: ns }),
      /must be non-empty text on one line/,
    );
    assert.throws(
      () => setSysctl("net.ipv4.ip_forward", "banana", { netns: ns }),
      /Cannot write sysctl net\.ipv4\.ip_forward/,
    );
    assert.equal(getSysctl("net.ipv4.ip_forward", { netns: ns }), "0");
  });
  assert.throws(
    () => getSysctl("net.ipv4.ip_forward", { netns: "volant-t-does-not-exist" }),
    /Cannot open network namespace/,
  );
});

kernelTest("the root namespace's links, nft ruleset and ip_forward are unchanged", () => {
  assert.deepEqual(rootSnapshot(), ROOT_BEFORE);
});
