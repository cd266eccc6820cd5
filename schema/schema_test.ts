import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  decodeBootConfig,
  encodeBootConfig,
  ERROR_STATUS,
  ErrorCode,
  fromZodError,
  ImagePullRequest,
  VmCreateRequest,
} from "./mod.ts";

Deno.test("VmCreateRequest leaves sizes to the service and rejects unknown fields", () => {
  const ok1 = VmCreateRequest.parse({ name: "web" });
  equal(ok1.cpu_cores, undefined, "the plugin's resources or 1 apply in the service");
  equal(ok1.memory_mb, undefined);
  deepEqual(ok1.publish, []);
  const bad = VmCreateRequest.safeParse({ name: "web", color: "red" });
  equal(bad.success, false);
});

Deno.test("fromZodError names the failing field", () => {
  const r = VmCreateRequest.safeParse({ name: "Web_1", memory_mb: 1 });
  ok(!r.success);
  const err = fromZodError(r.error);
  equal(err.code, "invalid_argument");
  ok(err.message.includes("name"), err.message);
  ok(err.message.includes("memory_mb"), err.message);
});

Deno.test("boot config round-trips through the kernel command line", () => {
  const word = encodeBootConfig({ v: 1, name: "a-b", hostname: "a-b" });
  ok(/^volant\.boot=[A-Za-z0-9_-]+$/.test(word), word);
  deepEqual(decodeBootConfig(`console=ttyS0 ${word} quiet`), {
    v: 1,
    name: "a-b",
    hostname: "a-b",
  });
  throws(() => decodeBootConfig("volant.boot=e30"));
});

Deno.test("every error code has an HTTP status", () => {
  for (const code of ErrorCode.options) ok(ERROR_STATUS[code] >= 400, code);
});

Deno.test("VmCreateRequest and ImagePullRequest take local image sources like registry references", () => {
  for (
    const image of [
      "docker-archive:/tmp/app.tar",
      "oci:/srv/layouts/app:1.0",
      "127.0.0.1:5000/demo/nginx:1.0",
      "busybox:1.36",
    ]
  ) {
    equal(VmCreateRequest.parse({ name: "job", image }).image, image);
    equal(ImagePullRequest.parse({ ref: image }).ref, image);
  }
});

Deno.test("a bad image reference is refused naming the field and what was expected", () => {
  const cases: [string, string][] = [["docker-archive:app.tar", "not absolute"], [
    "Nginx",
    "lowercase",
  ]];
  for (const [image, why] of cases) {
    const r = VmCreateRequest.safeParse({ name: "job", image });
    ok(!r.success);
    const message = fromZodError(r.error).message;
    ok(message.startsWith(`Invalid input: image: Image reference "${image}" is invalid`), message);
    ok(message.includes(why), message);
    ok(message.includes("expected [registry[:port]/]name[:tag]"), message);
    ok(message.includes("docker-archive:<absolute file>"), message);
    const pull = ImagePullRequest.safeParse({ ref: image });
    ok(!pull.success);
    ok(fromZodError(pull.error).message.startsWith("Invalid input: ref: "));
  }
});
