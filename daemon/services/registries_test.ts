import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { RegistryCredentialService } from "./registries.ts";

Deno.test("registry credentials: a 0600 file, listed without passwords, hub names merged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-registries-" });
  const file = `${dir}/state/registry-credentials.json`;
  const creds = new RegistryCredentialService({
    file,
    now: () => new Date("2026-01-01T00:00:00Z"),
  });
  try {
    deepEqual(await creds.list(), []);
    equal(await creds.lookup("ghcr.io"), null);
    await Promise.all([
      creds.login({ host: "GHCR.io", username: "me", password: "pw-one" }),
      creds.login({ host: "docker.io", username: "hub", password: "pw-two" }),
      creds.login({ host: "127.0.0.1:5000", username: "ci", password: "pw-three" }),
    ]);
    equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const listed = await creds.list();
    deepEqual(listed.map((r) => [r.host, r.username]), [
      ["127.0.0.1:5000", "ci"],
      ["docker.io", "hub"],
      ["ghcr.io", "me"],
    ]);
    ok(!JSON.stringify(listed).includes("pw-"));
    equal((await creds.lookup("registry-1.docker.io"))?.password, "pw-two");
    equal((await creds.lookup("ghcr.io"))?.username, "me");
    match((await creds.lookup("ghcr.io"))!.source, /registry-credentials\.json/);
    await creds.login({ host: "ghcr.io", username: "me2", password: "pw-four" });
    equal((await creds.lookup("ghcr.io"))?.password, "pw-four", "a second login replaces");
    equal((await creds.logout("ghcr.io")).username, "me2");
    equal(await creds.lookup("ghcr.io"), null);
    await rejects(creds.logout("ghcr.io"), /No credentials stored for ghcr\.io/);
    await rejects(
      () => creds.login({ host: "https://x/y", username: "a", password: "b" }),
      /host: expected a registry host/,
    );
    await rejects(
      () => creds.login({ host: "x.io", username: "a", password: "" }),
      (err: Error) => !err.message.includes("pw-") && /password/.test(err.message),
    );
    deepEqual((await Array.fromAsync(Deno.readDir(`${dir}/state`))).map((e) => e.name), [
      "registry-credentials.json",
    ], "no temp file left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
