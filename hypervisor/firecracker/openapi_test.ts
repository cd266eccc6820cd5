import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { VolantError } from "../../schema/mod.ts";
import type { VmSpec } from "../driver.ts";
import { checkVmSpec } from "../spec_check.ts";
import { testVmShapes } from "../testing/fake_ch_vmm.ts";
import { OpenApiContract } from "../testing/openapi_contract.ts";
import { FC_ENDPOINTS } from "./api.ts";
import {
  fcArgs,
  fcConfigRequests,
  fcSerialPrefix,
  fcSnapshotCreate,
  fcSnapshotLoad,
  fcSpecRules,
} from "./config.ts";

const DOCS = ["firecracker/openapi/openapi.yaml", "firecracker/openapi/openapi-v1.16.1.yaml"];
const docs: Array<[string, OpenApiContract]> = [];
for (const doc of DOCS) docs.push([doc, await OpenApiContract.loadVendored(doc)]);

/** The shapes as Firecracker can run them: its disks are raw files. */
function fcShapes(): Array<[string, VmSpec]> {
  return Object.entries(testVmShapes("/srv/vm")).map(([shape, spec]) => [
    shape,
    { ...spec, disks: spec.disks.map((d) => ({ ...d, format: "raw" as const })) },
  ]);
}

/** Every body the driver can send after create: the actions and the pause/resume states. */
const RUNTIME_REQUESTS = [
  { method: "PUT", path: "/actions", body: { action_type: "InstanceStart" } },
  { method: "PUT", path: "/actions", body: { action_type: "SendCtrlAltDel" } },
  { method: "PATCH", path: "/vm", body: { state: "Paused" } },
  { method: "PATCH", path: "/vm", body: { state: "Resumed" } },
  { method: "GET", path: "/", body: undefined },
] as const;

for (const [name, contract] of docs) {
  Deno.test({
    name: `firecracker API (${name}): every call the driver makes is documented`,
    fn: () => {
      const documented = new Set(contract.operations().map((o) => `${o.method} ${o.path}`));
      for (const [action, e] of Object.entries(FC_ENDPOINTS)) {
        ok(documented.has(`${e.method} ${e.path}`), `${action}: ${e.method} ${e.path}`);
      }
      for (const r of RUNTIME_REQUESTS) {
        deepEqual(contract.requestProblems(r.method, r.path, r.body), [], JSON.stringify(r));
      }
    },
  });

  Deno.test({
    name: `firecracker API (${name}): the configuration of every VM shape is valid`,
    fn: () => {
      for (const [shape, spec] of fcShapes()) {
        const requests = fcConfigRequests(spec);
        equal(requests.length, 2 + spec.disks.length + spec.nics.length, shape);
        for (const r of requests) {
          deepEqual(
            contract.requestProblems(r.method, r.path, r.body),
            [],
            `${shape}: ${r.method} ${r.path} ${JSON.stringify(r.body)}`,
          );
          // Firecracker refuses a body whose id differs from the path's.
          const match = contract.route(r.method, r.path);
          for (const [param, value] of Object.entries(match?.params ?? {})) {
            equal((r.body as unknown as Record<string, unknown>)[param], value, r.path);
          }
        }
      }
    },
  });

  Deno.test({
    name: `firecracker API (${name}): snapshot create and load bodies are valid`,
    fn: () => {
      const create = fcSnapshotCreate("/var/lib/volant/saves/web/.state.partial");
      deepEqual(create, {
        snapshot_type: "Full",
        snapshot_path: "/var/lib/volant/saves/web/.state.partial/vmstate",
        mem_file_path: "/var/lib/volant/saves/web/.state.partial/memory",
      });
      deepEqual(contract.requestProblems("PUT", "/snapshot/create", create), []);
      deepEqual(contract.schemaProblems("SnapshotCreateParams", create), []);
      for (const [shape, spec] of fcShapes()) {
        const load = fcSnapshotLoad("/var/lib/volant/saves/web", spec);
        deepEqual(contract.requestProblems("PUT", "/snapshot/load", load), [], shape);
        deepEqual(contract.schemaProblems("SnapshotLoadParams", load), [], shape);
        equal("mem_file_path" in load, false, "never the deprecated memory field");
        deepEqual(
          load.network_overrides ?? [],
          spec.nics.map((n) => ({ iface_id: n.id, host_dev_name: n.tap })),
          shape,
        );
      }
      const broken: Array<[string, string, unknown, RegExp]> = [
        ["a lower-case backend", "/snapshot/load", {
          snapshot_path: "/s/vmstate",
          mem_backend: { backend_type: "file", backend_path: "/s/memory" },
        }, /allowed values: File\|Uffd/],
        ["a backend without its path", "/snapshot/load", {
          snapshot_path: "/s/vmstate",
          mem_backend: { backend_type: "File" },
        }, /required property 'backend_path'/],
        ["an override without its tap", "/snapshot/load", {
          snapshot_path: "/s/vmstate",
          mem_backend: { backend_type: "File", backend_path: "/s/memory" },
          network_overrides: [{ iface_id: "eth0" }],
        }, /required property 'host_dev_name'/],
        ["a misspelt resume", "/snapshot/load", {
          snapshot_path: "/s/vmstate",
          mem_backend: { backend_type: "File", backend_path: "/s/memory" },
          resume: false,
        }, /additional properties: resume/],
        ["no state path", "/snapshot/create", { mem_file_path: "/s/memory" }, /snapshot_path/],
        ["no memory path", "/snapshot/create", { snapshot_path: "/s/vmstate" }, /mem_file_path/],
        ["an unknown type", "/snapshot/create", {
          snapshot_type: "full",
          snapshot_path: "/s/vmstate",
          mem_file_path: "/s/memory",
        }, /allowed values: Full\|Diff/],
      ];
      for (const [what, path, body, problem] of broken) {
        const problems = contract.requestProblems("PUT", path, body);
        ok(problems.some((p) => problem.test(p)), `${what}: ${problems.join("; ")}`);
      }
    },
  });

  Deno.test({
    name: `firecracker API (${name}): the check refuses what Firecracker would not take`,
    fn: () => {
      const broken: Array<[string, string, string, unknown, RegExp]> = [
        ["an unknown action", "PUT", "/actions", { action_type: "Shutdown" }, /allowed values/],
        ["a misspelt state", "PATCH", "/vm", { state: "Resume" }, /allowed values/],
        ["a drive without is_root_device", "PUT", "/drives/root", {
          drive_id: "root",
          path_on_host: "/r",
          is_read_only: false,
        }, /required property 'is_root_device'/],
        ["an unknown drive field", "PUT", "/drives/root", {
          drive_id: "root",
          path_on_host: "/r",
          is_root_device: false,
          is_read_only: false,
          readonly: true,
        }, /additional properties: readonly/],
        ["33 vCPUs", "PUT", "/machine-config", { vcpu_count: 33, mem_size_mib: 128 }, /<= 32/],
        ["a string MTU", "PUT", "/network-interfaces/eth0", {
          iface_id: "eth0",
          host_dev_name: "t",
          mtu: "1500",
        }, /mtu must be integer/],
        ["no body", "PUT", "/boot-source", undefined, /a body is required/],
        ["a body on GET", "GET", "/", {}, /takes no body/],
        ["no such path", "PUT", "/shutdown", {}, /no such operation/],
      ];
      for (const [what, method, path, body, problem] of broken) {
        const problems = contract.requestProblems(method, path, body);
        ok(problems.some((p) => problem.test(p)), `${what}: ${problems.join("; ")}`);
      }
    },
  });
}

Deno.test("fcConfigRequests() maps the spec in order, drives and NICs by id", () => {
  const shapes = Object.fromEntries(fcShapes());
  const requests = fcConfigRequests(shapes["several NICs"]!);
  deepEqual(requests.map((r) => r.path), [
    "/machine-config",
    "/boot-source",
    "/drives/root",
    "/network-interfaces/eth0",
    "/network-interfaces/eth1",
    "/network-interfaces/eth2",
  ]);
  deepEqual(requests[0]!.body, { vcpu_count: 2, mem_size_mib: 128 });
  deepEqual(requests[1]!.body, {
    kernel_image_path: "/srv/vm/vmlinux",
    boot_args: "console=ttyS0 quiet",
  });
  deepEqual(requests[5]!.body, {
    iface_id: "eth2",
    host_dev_name: "vt2",
    guest_mac: "52:54:00:ab:cd:ef",
  });
  const extra = fcConfigRequests(shapes["extra disks, qcow2 and read-only"]!);
  deepEqual(extra[1]!.body, {
    kernel_image_path: "/srv/vm/vmlinux",
    boot_args: "console=ttyS0 quiet",
    initrd_path: "/srv/vm/initrd.cpio",
  });
  deepEqual(extra.slice(2, 5).map((r) => r.body), [
    {
      drive_id: "root",
      path_on_host: "/srv/vm/root.erofs",
      is_root_device: false,
      is_read_only: true,
    },
    {
      drive_id: "data",
      path_on_host: "/srv/vm/data.qcow2",
      is_root_device: false,
      is_read_only: false,
      cache_type: "Writeback",
    },
    {
      drive_id: "a_seed_with_a_long_id_0123",
      path_on_host: "/srv/vm/seed.img",
      is_root_device: false,
      is_read_only: true,
    },
  ]);
  equal(fcConfigRequests(shapes["no NIC"]!).length, 2);
});

Deno.test("Firecracker's spec rules refuse exactly the shapes with a qcow2 disk", () => {
  for (const [shape, spec] of Object.entries(testVmShapes("/srv/vm"))) {
    const hasQcow2 = spec.disks.some((d) => d.format === "qcow2");
    if (hasQcow2) {
      throws(() => checkVmSpec(spec, fcSpecRules(spec)), (e: VolantError) => {
        equal(e.code, "invalid_argument");
        return /format: Firecracker takes raw images, not qcow2/.test(e.message);
      }, shape);
    } else {
      checkVmSpec(spec, fcSpecRules(spec));
    }
  }
});

Deno.test("fcArgs() and fcSerialPrefix() build the launch command", () => {
  deepEqual(fcArgs("/run/web"), [
    "--api-sock",
    "/run/web/fc.sock",
    "--level",
    "Warning",
    "--show-level",
  ]);
  const prefix = fcSerialPrefix("/var/log/volant/vms/web/serial.log");
  equal(prefix[0], "/bin/sh");
  equal(prefix.at(-1), "/var/log/volant/vms/web/serial.log");
});

Deno.test("fcSerialPrefix() appends the command's stdout to the log and keeps stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "volant-fc-prefix-" });
  try {
    const log = `${dir}/serial.log`;
    await Deno.writeTextFile(log, "earlier\n");
    const out = await new Deno.Command(fcSerialPrefix(log)[0]!, {
      args: [...fcSerialPrefix(log).slice(1), "/bin/sh", "-c", "echo to-serial; echo to-err >&2"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(out.code, 0);
    equal(await Deno.readTextFile(log), "earlier\nto-serial\n");
    equal(new TextDecoder().decode(out.stderr), "to-err\n");
    equal(new TextDecoder().decode(out.stdout), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
