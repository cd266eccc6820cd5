import { deepEqual, equal, ok } from "node:assert/strict";
import { RegistryClient } from "./registry_client.ts";
import { OCI_MANIFEST } from "./manifest.ts";
import { digestOf, rejectsWith, withTempDir } from "./_testing.ts";
import { freePort, push, serveFake, startRegistry, umoci } from "./testing_registry.ts";

Deno.test("RegistryClient against a real docker-registry", async (t) => {
  await withTempDir(async (dir) => {
    const registry = await startRegistry(`${dir}/registry`);
    try {
      const layout = `${dir}/layout`;
      await umoci("init", "--layout", layout);
      await umoci("new", "--image", `${layout}:t`);
      await Deno.writeTextFile(`${dir}/hello`, "hello\n");
      await umoci("insert", "--image", `${layout}:t`, `${dir}/hello`, "/hello");
      await push(layout, "t", `${registry.host}/demo/hello:t`);
      const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
      const pushed: string = index.manifests[0].digest;
      const client = new RegistryClient(registry.host, { insecure: true, credentials: null });

      await t.step("getManifest() by tag and by digest, verified", async () => {
        const m = await client.getManifest("demo/hello", "t");
        equal(m.digest, pushed);
        equal(m.digest, digestOf(m.bytes));
        equal(m.mediaType, OCI_MANIFEST);
        const again = await client.getManifest("demo/hello", pushed);
        deepEqual(again.bytes, m.bytes);
      });

      await t.step("getBlob() streams a layer with its size", async () => {
        const m = JSON.parse(
          new TextDecoder().decode((await client.getManifest("demo/hello", "t")).bytes),
        );
        const layer = m.layers[0];
        const blob = await client.getBlob("demo/hello", layer.digest);
        equal(blob.size, layer.size);
        const bytes = new Uint8Array(await new Response(blob.body).arrayBuffer());
        equal(digestOf(bytes), layer.digest);
      });

      await t.step("listTags() lists the repository's tags", async () => {
        deepEqual(await client.listTags("demo/hello"), ["t"]);
      });

      await t.step("an unknown tag is not_found and names the tags there are", async () => {
        await rejectsWith(
          client.getManifest("demo/hello", "nope"),
          "not_found",
          `Tag nope does not exist in ${registry.host}/demo/hello`,
          "its tags: t",
        );
      });

      await t.step("an unknown repository is not_found and says so", async () => {
        await rejectsWith(
          client.getManifest("demo/absent", "t"),
          "not_found",
          `Repository ${registry.host}/demo/absent does not exist`,
        );
      });

      await t.step("an unknown digest is not_found", async () => {
        const d = digestOf("nothing");
        await rejectsWith(
          client.getManifest("demo/hello", d),
          "not_found",
          `Manifest ${d} does not exist`,
        );
        await rejectsWith(
          client.getBlob("demo/hello", d),
          "not_found",
          `Blob ${d}`,
          "BLOB_UNKNOWN",
        );
      });

      await t.step(
        "https against the plain-http registry suggests --insecure-registry",
        async () => {
          const https = new RegistryClient(registry.host, { credentials: null });
          await rejectsWith(
            https.getManifest("demo/hello", "t"),
            "artifact_unavailable",
            `Registry ${registry.host} is not reachable`,
            `--insecure-registry ${registry.host}`,
          );
        },
      );
    } finally {
      await registry.stop();
    }
  });
});

Deno.test("RegistryClient reports a registry that is down as not reachable", async () => {
  const host = `127.0.0.1:${freePort()}`;
  const e = await rejectsWith(
    new RegistryClient(host, { insecure: true, credentials: null }).getManifest("a/b", "t"),
    "artifact_unavailable",
    `Registry ${host} is not reachable: `,
    "Connection refused",
  );
  equal(e.message.includes("--insecure-registry"), false);
});

const MANIFEST = new TextEncoder().encode(
  JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST }),
);

Deno.test("RegistryClient carries the registry's own message on 5xx and 429", async () => {
  let status = 503;
  const fake = serveFake(() =>
    Response.json({ errors: [{ code: "UNAVAILABLE", message: "backend storage is read-only" }] }, {
      status,
    })
  );
  try {
    const client = new RegistryClient(fake.host, { insecure: true, credentials: null });
    const e = await rejectsWith(
      client.getManifest("team/app", "v1"),
      "artifact_unavailable",
      `Registry ${fake.host} answered HTTP 503 for manifest v1 of ${fake.host}/team/app`,
      "UNAVAILABLE: backend storage is read-only",
    );
    equal(e.details?.status, 503);
    status = 429;
    await rejectsWith(
      client.getBlob("team/app", digestOf("x")),
      "artifact_unavailable",
      "rate limiting",
    );
  } finally {
    await fake.close();
  }
});

Deno.test("RegistryClient rejects a manifest whose bytes do not match the announced digest", async () => {
  const fake = serveFake(() =>
    new Response(MANIFEST, {
      headers: { "content-type": OCI_MANIFEST, "docker-content-digest": digestOf("other") },
    })
  );
  try {
    const client = new RegistryClient(fake.host, { insecure: true, credentials: null });
    await rejectsWith(
      client.getManifest("a/b", "t"),
      "checksum_mismatch",
      digestOf(MANIFEST),
      digestOf("other"),
    );
    await rejectsWith(
      client.getManifest("a/b", digestOf("asked")),
      "checksum_mismatch",
      digestOf("asked"),
    );
  } finally {
    await fake.close();
  }
});

/** A registry demanding a bearer token from a separate token server that checks Basic creds. */
function bearerPair(opts: { tokenStatus?: number; acceptToken?: boolean } = {}) {
  const seen: { tokenAuth: string | null; query: string }[] = [];
  const tokens = serveFake((req) => {
    const url = new URL(req.url);
    seen.push({ tokenAuth: req.headers.get("authorization"), query: url.search });
    if (opts.tokenStatus !== undefined) {
      return new Response("bad credentials", { status: opts.tokenStatus });
    }
    return Response.json({ access_token: "tok-123", expires_in: 300 });
  });
  const registry = serveFake((req) => {
    const url = new URL(req.url);
    if (opts.acceptToken !== false && req.headers.get("authorization") === "Bearer tok-123") {
      return new Response(MANIFEST, { headers: { "content-type": OCI_MANIFEST } });
    }
    return Response.json(
      { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
      {
        status: 401,
        headers: {
          "www-authenticate":
            `Bearer realm="http://${tokens.host}/token",service="fake-registry",scope="repository:${
              url.pathname.split("/").slice(2, 4).join("/")
            }:pull"`,
        },
      },
    );
  });
  return {
    tokens,
    registry,
    seen,
    close: async () => {
      await tokens.close();
      await registry.close();
    },
  };
}

async function dockerConfig(dir: string, host: string, user: string, pass: string): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ auths: { [host]: { auth: btoa(`${user}:${pass}`) } } }),
  );
}

Deno.test("RegistryClient fetches a bearer token with config.json credentials and reuses it", async () => {
  const pair = bearerPair();
  try {
    await withTempDir(async (dir) => {
      await dockerConfig(dir, pair.registry.host, "alice", "pw");
      const client = new RegistryClient(pair.registry.host, {
        insecure: true,
        dockerConfigDir: dir,
      });
      const m = await client.getManifest("team/app", "v1");
      equal(m.digest, digestOf(MANIFEST));
      await client.getManifest("team/app", "v2");
      equal(pair.seen.length, 1, "the token was fetched once");
      equal(pair.seen[0]!.tokenAuth, `Basic ${btoa("alice:pw")}`);
      equal(pair.seen[0]!.query, "?service=fake-registry&scope=repository%3Ateam%2Fapp%3Apull");
      deepEqual(pair.registry.log, [
        "GET /v2/team/app/manifests/v1",
        "GET /v2/team/app/manifests/v1",
        "GET /v2/team/app/manifests/v2",
      ]);
    });
  } finally {
    await pair.close();
  }
});

Deno.test("RegistryClient fetches an anonymous token when there are no credentials", async () => {
  const pair = bearerPair();
  try {
    await withTempDir(async (dir) => {
      const client = new RegistryClient(pair.registry.host, {
        insecure: true,
        dockerConfigDir: dir,
      });
      await client.getManifest("team/app", "v1");
      equal(pair.seen[0]!.tokenAuth, null);
    });
  } finally {
    await pair.close();
  }
});

Deno.test("RegistryClient names the credentials' file when the token server refuses them", async () => {
  const pair = bearerPair({ tokenStatus: 401 });
  try {
    await withTempDir(async (dir) => {
      await dockerConfig(dir, pair.registry.host, "alice", "wrong");
      const client = new RegistryClient(pair.registry.host, {
        insecure: true,
        dockerConfigDir: dir,
      });
      await rejectsWith(
        client.getManifest("team/app", "v1"),
        "artifact_unavailable",
        `Token server http://${pair.tokens.host}/token refused the credentials`,
        `${dir}/config.json`,
        "bad credentials",
      );
    });
  } finally {
    await pair.close();
  }
});

Deno.test("RegistryClient reports a 401 that persists after authenticating", async () => {
  const pair = bearerPair({ acceptToken: false });
  try {
    await withTempDir(async (dir) => {
      const client = new RegistryClient(pair.registry.host, {
        insecure: true,
        dockerConfigDir: dir,
      });
      await rejectsWith(
        client.getManifest("team/app", "v1"),
        "artifact_unavailable",
        `Registry ${pair.registry.host} refused access to ${pair.registry.host}/team/app`,
        "UNAUTHORIZED: authentication required",
        "may need credentials",
      );
      equal(pair.registry.log.length, 2);
    });
  } finally {
    await pair.close();
  }
});

Deno.test("RegistryClient answers a Basic challenge with config.json credentials", async () => {
  const fake = serveFake((req) =>
    req.headers.get("authorization") === `Basic ${btoa("bob:pw")}`
      ? new Response(MANIFEST, { headers: { "content-type": OCI_MANIFEST } })
      : new Response("no", { status: 401, headers: { "www-authenticate": 'Basic realm="fake"' } })
  );
  try {
    await withTempDir(async (dir) => {
      await dockerConfig(dir, fake.host, "bob", "pw");
      const client = new RegistryClient(fake.host, { insecure: true, dockerConfigDir: dir });
      equal((await client.getManifest("x/y", "1")).digest, digestOf(MANIFEST));
      await Deno.remove(`${dir}/config.json`);
      const anonymous = new RegistryClient(fake.host, { insecure: true, dockerConfigDir: dir });
      await rejectsWith(
        anonymous.getManifest("x/y", "1"),
        "artifact_unavailable",
        "refused access",
        "HTTP 401",
      );
    });
  } finally {
    await fake.close();
  }
});

Deno.test("RegistryClient follows a blob redirect without sending credentials to the other host", async () => {
  const data = new TextEncoder().encode("blob bytes");
  const cdn = serveFake((req) =>
    new Response(req.headers.get("authorization") === null ? data : "leaked")
  );
  const fake = serveFake((req) =>
    req.headers.get("authorization") === `Basic ${btoa("u:p")}`
      ? new Response(null, { status: 307, headers: { location: `http://${cdn.host}/blob?sig=1` } })
      : new Response("no", { status: 401, headers: { "www-authenticate": 'Basic realm="x"' } })
  );
  try {
    await withTempDir(async (dir) => {
      await dockerConfig(dir, fake.host, "u", "p");
      const client = new RegistryClient(fake.host, { insecure: true, dockerConfigDir: dir });
      const blob = await client.getBlob("x/y", digestOf(data));
      deepEqual(new Uint8Array(await new Response(blob.body).arrayBuffer()), data);
      deepEqual(cdn.log, ["GET /blob?sig=1"]);
      ok(client.requests >= 3);
    });
  } finally {
    await fake.close();
    await cdn.close();
  }
});
