import { deepEqual, equal, ok } from "node:assert/strict";
import { type JailOp, planJail } from "./plan.ts";

Deno.test("planJail() binds real paths, recreates symlinks on the way, and covers children", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "volant-plan-" }));
  try {
    await Deno.mkdir(`${dir}/usr/lib/x`, { recursive: true });
    await Deno.writeTextFile(`${dir}/usr/lib/x/libz.so.1`, "");
    await Deno.symlink("usr/lib", `${dir}/lib`);
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeTextFile(`${dir}/data/kernel`, "");
    await Deno.symlink("kernel", `${dir}/data/vmlinuz`);
    await Deno.mkdir(`${dir}/run`);
    const ops = await planJail({
      exec: [`${dir}/lib/x`, `${dir}/lib/x/libz.so.1`],
      readOnly: [`${dir}/data/vmlinuz`],
      readWrite: [`${dir}/run`, `${dir}/run`],
    }, []);
    const binds = ops.filter((o): o is Extract<JailOp, { op: "bind" }> => o.op === "bind");
    deepEqual(binds.map((b) => [b.mode, b.path, b.dir]), [
      ["rw", `${dir}/run`, true],
      ["exec", `${dir}/usr/lib/x`, true],
      ["ro", `${dir}/data/kernel`, false],
    ]);
    const links = ops.filter((o) => o.op === "link").map((o) =>
      o.op === "link" && [o.path, o.target]
    );
    deepEqual(links, [[`${dir}/lib`, "usr/lib"], [`${dir}/data/vmlinuz`, "kernel"]]);
    const devs = ops.filter((o) => o.op === "dev").map((o) => o.op === "dev" && o.path);
    deepEqual(devs, ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planJail() makes /dev/kvm and /dev/net/tun owned by the VMM when asked", async () => {
  const kvm = await Deno.stat("/dev/kvm").then((s) => s.isCharDevice, () => false);
  const tun = await Deno.stat("/dev/net/tun").then((s) => s.isCharDevice, () => false);
  if (!kvm || !tun) return; // A host without them: nothing to make.
  const ops = await planJail({ exec: [], readOnly: [], readWrite: [] }, ["kvm", "tun"]);
  const byPath = new Map(ops.map((o) => [o.op === "dev" ? o.path : "", o]));
  const k = byPath.get("/dev/kvm");
  ok(k?.op === "dev" && k.owned && k.mode === 0o600);
  equal(k.major, 10);
  equal(k.minor, 232);
  const t = byPath.get("/dev/net/tun");
  ok(t?.op === "dev" && t.owned && t.minor === 200);
});
