import { deepEqual, equal } from "node:assert/strict";
import { dockerConfigDir, loadCredentials } from "./docker_config.ts";
import { rejectsWith, withTempDir } from "./_testing.ts";

const b64 = (s: string) => btoa(s);

async function writeConfig(dir: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/config.json`,
    typeof config === "string" ? config : JSON.stringify(config),
  );
}

Deno.test("dockerConfigDir() prefers DOCKER_CONFIG over HOME", () => {
  equal(dockerConfigDir({ DOCKER_CONFIG: "/x", HOME: "/home/u" }), "/x");
  equal(dockerConfigDir({ HOME: "/home/u" }), "/home/u/.docker");
});

Deno.test("loadCredentials() reads auth entries keyed by host, URL or Hub alias", async () => {
  await withTempDir(async (dir) => {
    await writeConfig(dir, {
      auths: {
        "127.0.0.1:5000": { auth: b64("alice:s3cr:et") },
        "https://ghcr.io": { username: "bob", password: "pw" },
        "https://index.docker.io/v1/": { auth: b64("hub:token") },
        "other.io": { identitytoken: "x" },
      },
      credsStore: "desktop",
    });
    deepEqual(await loadCredentials("127.0.0.1:5000", dir), {
      username: "alice",
      password: "s3cr:et",
      source: `${dir}/config.json`,
    });
    equal((await loadCredentials("ghcr.io", dir))?.username, "bob");
    equal((await loadCredentials("registry-1.docker.io", dir))?.password, "token");
    equal(await loadCredentials("127.0.0.1:5001", dir), null);
    equal(await loadCredentials("other.io", dir), null);
  });
});

Deno.test("loadCredentials() returns null without a config file", async () => {
  await withTempDir(async (dir) => {
    equal(await loadCredentials("ghcr.io", `${dir}/missing`), null);
  });
});

Deno.test("loadCredentials() names the file and key of a malformed entry", async () => {
  await withTempDir(async (dir) => {
    await writeConfig(dir, { auths: { "r.io": { auth: b64("no-colon") } } });
    await rejectsWith(
      loadCredentials("r.io", dir),
      "invalid_argument",
      `${dir}/config.json`,
      "auths.r.io",
    );
    await writeConfig(dir, { auths: { "r.io": { auth: "%%%" } } });
    await rejectsWith(loadCredentials("r.io", dir), "invalid_argument", "not base64");
    await writeConfig(dir, "{nope");
    await rejectsWith(loadCredentials("r.io", dir), "invalid_argument", "not valid JSON");
  });
});
