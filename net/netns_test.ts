import assert from "node:assert/strict";
import { VolantError } from "../schema/error.ts";
import { ipJson, kernelTest, rootLinks, withTestNamespace } from "./testing.ts";
import { currentNetns, withNetns } from "./netns.ts";
import { createBridge, getLink, listLinks } from "./netlink/mod.ts";

kernelTest("withNetns(): a bridge created inside exists only in that namespace", async () => {
  const rootBefore = rootLinks();
  await withTestNamespace((ns) => {
    const self = currentNetns();
    const seen = withNetns(ns, () => {
      assert.notEqual(currentNetns(), self);
      createBridge("vbr-ns");
      return listLinks().map((l) => l.name).sort();
    });
    assert.equal(currentNetns(), self);
    assert.deepEqual(seen, ["lo", "vbr-ns"]);
    const inNs = ipJson<{ ifname: string }[]>(ns, "link", "show").map((l) => l.ifname);
    assert.ok(inNs.includes("vbr-ns"));
    const inRoot = ipJson<{ ifname: string }[]>(undefined, "link", "show").map((l) => l.ifname);
    assert.ok(!inRoot.includes("vbr-ns"));
    assert.equal(getLink("vbr-ns"), undefined, "not visible from the root namespace");
  });
  assert.deepEqual(rootLinks(), rootBefore);
});

kernelTest("withNetns() switches back when fn throws, and refuses async functions", async () => {
  await withTestNamespace((ns) => {
    const self = currentNetns();
    assert.throws(() =>
      withNetns(ns, () => {
        throw new Error("boom");
      }), /boom/);
    assert.equal(currentNetns(), self);
    assert.throws(
      // @ts-expect-error: the type refuses promise-returning functions too
      () => withNetns(ns, async () => {}),
      (err: unknown) => {
        assert.ok(err instanceof VolantError);
        assert.match(err.message, /needs a synchronous function/);
        return true;
      },
    );
    assert.equal(currentNetns(), self);
  });
});

// That a netlink socket opened inside keeps the namespace is tested in netlink/_socket_test.ts.
kernelTest("withNetns(): sync child processes spawned inside belong to the namespace", async () => {
  await withTestNamespace((ns) => {
    withNetns(ns, () => createBridge("vbr-x"));
    // A child spawned synchronously inside runs in the namespace (plain `ip link`, no -n).
    const text = withNetns(ns, () =>
      new TextDecoder().decode(
        new Deno.Command("ip", { args: ["-j", "link", "show"], stdout: "piped" }).outputSync()
          .stdout,
      ));
    assert.ok((JSON.parse(text) as { ifname: string }[]).some((l) => l.ifname === "vbr-x"));
  });
});

kernelTest("withNetns() reports a missing namespace and a bad name", () => {
  assert.throws(() => withNetns("volant-t-does-not-exist", () => 1), (err: unknown) => {
    assert.ok(err instanceof VolantError);
    assert.equal(err.code, "not_found");
    assert.match(err.message, /\/run\/netns\/volant-t-does-not-exist.*ip netns add/);
    return true;
  });
  assert.throws(() => withNetns("../etc", () => 1), /not a namespace name/);
});
