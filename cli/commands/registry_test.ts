import { deepEqual, equal, match, ok } from "node:assert/strict";
import { RegistryCredentialList } from "../../schema/mod.ts";
import {
  handImage,
  htpasswdLine,
  push,
  startRegistry,
  writeLayout,
} from "../../images/testing_registry.ts";
import { startDaemon, volar } from "../testing.ts";

const PASSWORD = "pw-Zq7-never-shown";

Deno.test("volar registry login: a pull from a registry with basic auth fails before and succeeds after; the password never shows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volar-registry-" });
  await Deno.writeTextFile(`${dir}/htpasswd`, `${await htpasswdLine("ci", PASSWORD)}\n`);
  const registry = await startRegistry(`${dir}/registry`, { htpasswd: `${dir}/htpasswd` });
  const daemon = await startDaemon({ tcp: true });
  const s = ["--socket", daemon.socket];
  try {
    const image = await handImage([[{ name: "hello.txt", data: "hi\n" }]]);
    await writeLayout(`${dir}/layout`, [{ tag: "1", image }]);
    const ref = `${registry.host}/demo/app:1`;
    await push(`${dir}/layout`, "1", ref, { username: "ci", password: PASSWORD });

    const before = await volar([...s, "images", "pull", ref, "--insecure-registry"]);
    equal(before.code, 1, "no credentials: refused");
    match(before.stderr, /401|unauthori[sz]ed|credentials/i);

    // No password on stdin, no terminal: a usage error, nothing stored.
    const noPassword = await volar([...s, "registry", "login", registry.host, "--username", "ci"]);
    equal(noPassword.code, 2);
    match(noPassword.stderr, /--password-stdin/);
    const login = await volar(
      [...s, "registry", "login", registry.host, "--username", "ci", "--password-stdin"],
      { stdin: `${PASSWORD}\n` },
    );
    equal(login.code, 0, login.stderr);
    equal(login.stdout, `stored credentials for ${registry.host} (user ci)\n`);
    const file = `${daemon.dir}/state/registry-credentials.json`;
    equal((await Deno.stat(file)).mode! & 0o777, 0o600);

    const list = await volar([...s, "registry", "list"]);
    equal(list.code, 0, list.stderr);
    match(list.stdout, new RegExp(`^${registry.host.replaceAll(".", "\\.")} +ci +\\S+$`, "m"));
    const json = RegistryCredentialList.parse(
      JSON.parse((await volar([...s, "registry", "list", "--json"])).stdout),
    );
    deepEqual(json.registries.map((r) => [r.host, r.username]), [[registry.host, "ci"]]);
    // Over TCP: admin tokens only, and still no password.
    const tcp = await volar(["--api", daemon.api!, "--token", daemon.token!, "registry", "list"]);
    equal(tcp.code, 0, tcp.stderr);

    const after = await volar([...s, "images", "pull", ref, "--insecure-registry", "--json"]);
    equal(after.code, 0, after.stderr);
    equal(JSON.parse(after.stdout).digest, image.digest);

    const logout = await volar([...s, "registry", "logout", registry.host]);
    equal(logout.code, 0, logout.stderr);
    match((await volar([...s, "registry", "list"])).stdout, /^no registry credentials/);
    const again = await volar([...s, "registry", "logout", registry.host]);
    equal(again.code, 1);
    match(again.stderr, /No credentials stored for/);

    const everything = [
      before,
      login,
      list,
      tcp,
      after,
      logout,
      again,
    ].map((r) => r.stdout + r.stderr).join("\n") + JSON.stringify(json) +
      daemon.logs.join("\n");
    ok(!everything.includes(PASSWORD), "the password is in no output and no log line");
  } finally {
    await daemon.stop();
    await registry.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
