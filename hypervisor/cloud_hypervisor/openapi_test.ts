import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { testVmShapes } from "../testing/fake_ch_vmm.ts";
import { OpenApiContract } from "../testing/openapi_contract.ts";
import { VolantError } from "../../schema/mod.ts";
import { CH_API_BASE, CH_ENDPOINTS } from "./api.ts";
import {
  chArgs,
  chRestoreConfig,
  chRestoredVmConfig,
  chSnapshotConfig,
  chVmConfig,
} from "./config.ts";

const DOCS = [
  "cloud_hypervisor/openapi/openapi.yaml",
  "cloud_hypervisor/openapi/openapi-v53.0.yaml",
];
const docs: Array<[string, OpenApiContract]> = [];
for (const doc of DOCS) docs.push([doc, await OpenApiContract.loadVendored(doc)]);

for (const [name, contract] of docs) {
  Deno.test({
    name: `cloud-hypervisor API (${name}): every call the driver makes is documented`,
    fn: () => {
      const documented = new Set(contract.operations().map((o) => `${o.method} ${o.path}`));
      for (const [action, e] of Object.entries(CH_ENDPOINTS)) {
        ok(
          documented.has(`${e.method} ${CH_API_BASE}${e.path}`),
          `${action}: ${e.method} ${e.path}`,
        );
      }
      // Every body-less call is body-less in the document too (none requires a body).
      const withBody = ["create", "snapshot", "restore"];
      for (const [action, e] of Object.entries(CH_ENDPOINTS)) {
        if (withBody.includes(action)) continue;
        deepEqual(contract.requestProblems(e.method, `${CH_API_BASE}${e.path}`), [], action);
      }
    },
  });

  Deno.test({
    name: `cloud-hypervisor API (${name}): vm.create bodies for every VM shape are valid`,
    fn: () => {
      for (const [shape, spec] of Object.entries(testVmShapes("/srv/vm"))) {
        const body = chVmConfig(spec);
        deepEqual(
          contract.requestProblems("PUT", `${CH_API_BASE}/vm.create`, body),
          [],
          `${shape}: ${JSON.stringify(body)}`,
        );
        equal(body.disks?.length ?? 0, spec.disks.length, shape);
        equal(body.net?.length ?? 0, spec.nics.length, shape);
      }
    },
  });

  Deno.test({
    name: `cloud-hypervisor API (${name}): vm.snapshot and vm.restore bodies are valid`,
    fn: () => {
      const snapshot = chSnapshotConfig("/var/lib/volant/saves/web/.state.partial");
      deepEqual(snapshot, {
        destination_url: "file:///var/lib/volant/saves/web/.state.partial",
      });
      deepEqual(contract.requestProblems("PUT", `${CH_API_BASE}/vm.snapshot`, snapshot), []);
      deepEqual(contract.schemaProblems("VmSnapshotConfig", snapshot), []);
      const restore = chRestoreConfig("/run/volant/vms/web/state.restore");
      deepEqual(restore, {
        source_url: "file:///run/volant/vms/web/state.restore",
        resume: false,
      });
      deepEqual(contract.requestProblems("PUT", `${CH_API_BASE}/vm.restore`, restore), []);
      deepEqual(contract.schemaProblems("RestoreConfig", restore), []);
      // Negative controls: the check is not vacuous for these bodies.
      const broken: Array<[string, string, unknown, RegExp]> = [
        ["no source", "/vm.restore", { resume: false }, /required property 'source_url'/],
        ["a misspelt field", "/vm.restore", {
          source_url: "file:///s",
          resume_vm: false,
        }, /additional properties: resume_vm/],
        ["a string flag", "/vm.restore", { source_url: "file:///s", resume: "no" }, /boolean/],
        ["an unknown mode", "/vm.restore", {
          source_url: "file:///s",
          memory_restore_mode: "Lazy",
        }, /allowed values: Copy\|OnDemand/],
        ["no body", "/vm.snapshot", undefined, /a body is required/],
        ["a misspelt field", "/vm.snapshot", { destination: "file:///s" }, /additional/],
      ];
      for (const [what, path, body, problem] of broken) {
        const problems = contract.requestProblems("PUT", `${CH_API_BASE}${path}`, body);
        ok(problems.some((p) => problem.test(p)), `${what}: ${problems.join("; ")}`);
      }
    },
  });

  Deno.test({
    name: `cloud-hypervisor API (${name}): a restored VM's configuration is still a VmConfig`,
    fn: () => {
      for (const [shape, spec] of Object.entries(testVmShapes("/srv/vm"))) {
        const moved = {
          ...spec,
          serialLog: "/srv/other/serial.log",
          disks: spec.disks.map((d) => ({ ...d, path: `/srv/other/${d.id}.img` })),
          nics: spec.nics.map((n) => ({ ...n, tap: `${n.tap}x` })),
        };
        const restored = chRestoredVmConfig(chVmConfig(spec), moved, "/s/config.json");
        deepEqual(contract.schemaProblems("VmConfig", restored), [], shape);
        deepEqual(restored, chVmConfig(moved), `${shape}: the host's paths are the new spec's`);
      }
    },
  });

  Deno.test({
    name: `cloud-hypervisor API (${name}): the check refuses what the VMM would not take`,
    fn: () => {
      // Negative controls: the validation is not vacuous for the fields the driver relies on.
      const good = chVmConfig(testVmShapes("/srv/vm")["extra disks, qcow2 and read-only"]!);
      const path = `${CH_API_BASE}/vm.create`;
      const broken: Array<[string, unknown, RegExp]> = [
        ["a misspelt field", {
          ...good,
          disks: [{ ...good.disks![0]!, readOnly: true }],
        }, /\/disks\/0 must NOT have additional properties: readOnly/],
        ["an unknown image type", {
          ...good,
          disks: [{ ...good.disks![0]!, image_type: "raw" }],
        }, /\/disks\/0\/image_type must be equal to one of the allowed values/],
        ["an unknown console mode", {
          ...good,
          console: { mode: "off" },
        }, /\/console\/mode must be equal to one of the allowed values/],
        ["a fractional memory size", {
          ...good,
          memory: { size: 1.5 },
        }, /\/memory\/size must be integer/],
        ["no payload", { ...good, payload: undefined }, /must have required property 'payload'/],
        ["zero vCPUs", {
          ...good,
          cpus: { boot_vcpus: 0, max_vcpus: 1 },
        }, /\/cpus\/boot_vcpus must be >= 1/],
      ];
      for (const [what, body, problem] of broken) {
        const problems = contract.requestProblems("PUT", path, body);
        ok(problems.some((p) => problem.test(p)), `${what}: ${problems.join("; ")}`);
      }
      ok(contract.requestProblems("PUT", `${CH_API_BASE}/vm.boot`, {}).length > 0, "no body");
      ok(contract.requestProblems("PUT", `${CH_API_BASE}/vm.nosuch`).length > 0, "no such path");
      ok(contract.requestProblems("GET", `${CH_API_BASE}/vm.create`).length > 0, "wrong method");
    },
  });
}

Deno.test("chVmConfig() maps the spec field by field", () => {
  const shapes = testVmShapes("/srv/vm");
  const config = chVmConfig(shapes["extra disks, qcow2 and read-only"]!);
  deepEqual(config.cpus, { boot_vcpus: 1, max_vcpus: 1 });
  equal(config.memory.size, 128 * 1024 * 1024);
  deepEqual(config.payload, {
    kernel: "/srv/vm/vmlinux",
    cmdline: "console=ttyS0 quiet",
    initramfs: "/srv/vm/initrd.cpio",
  });
  deepEqual(config.disks, [
    {
      id: "disk-root",
      path: "/srv/vm/root.erofs",
      readonly: true,
      image_type: "Raw",
      serial: "root",
    },
    {
      id: "disk-data",
      path: "/srv/vm/data.qcow2",
      readonly: false,
      image_type: "Qcow2",
      serial: "data",
    },
    {
      id: "disk-a_seed_with_a_long_id_0123",
      path: "/srv/vm/seed.img",
      readonly: true,
      image_type: "Raw",
    },
  ]);
  deepEqual(config.serial, { mode: "File", file: "/srv/vm/log/serial.log" });
  deepEqual(config.console, { mode: "Off" });
  const nics = chVmConfig(shapes["several NICs"]!).net;
  deepEqual(nics?.map((n) => [n.id, n.tap, n.mac]), [
    ["net-eth0", "vt0", "52:54:00:00:00:01"],
    ["net-eth1", "vt1", "52:54:00:00:00:02"],
    ["net-eth2", "vt2", "52:54:00:ab:cd:ef"],
  ]);
  const bare = chVmConfig(shapes["no NIC"]!);
  equal(bare.net, undefined);
  equal(bare.disks, undefined);
  equal(bare.memory.size, 2 * 1024 * 1024 * 1024);
  equal(chVmConfig(shapes["root disk"]!).payload.initramfs, undefined);
});

Deno.test("chRestoredVmConfig() keeps the guest's side and refuses another VM's state", () => {
  const spec = testVmShapes("/srv/vm")["several NICs"]!;
  // What Cloud Hypervisor writes holds every field, defaults included: those stay as saved.
  const saved = {
    ...chVmConfig(spec),
    rng: { src: "/dev/urandom", iommu: false },
    net: chVmConfig(spec).net!.map((n) => ({ ...n, mac: "52:54:00:99:99:99", num_queues: 2 })),
    serial: { mode: "File", file: "/old/serial.log", iommu: false },
  };
  const moved = { ...spec, serialLog: "/new/serial.log", nics: [{ ...spec.nics[0]!, tap: "t9" }] };
  const refuse = (change: Partial<typeof spec>, problem: RegExp) =>
    throws(() => chRestoredVmConfig(saved, { ...moved, ...change }, "/s/config.json"), (e) => {
      ok(e instanceof VolantError);
      equal(e.code, "invalid_argument");
      deepEqual(e.details, { field: "restoreFrom", path: "/s/config.json" });
      ok(problem.test(e.message), e.message);
      return true;
    });
  refuse({}, /saved with net \[net-eth0, net-eth1, net-eth2\], the spec has \[net-eth0\]/);
  const three = { ...moved, nics: spec.nics.map((n, i) => ({ ...n, tap: `t${i}` })) };
  const restored = chRestoredVmConfig(saved, three, "/s/config.json");
  deepEqual(restored.rng, saved.rng);
  deepEqual(restored.serial, { mode: "File", file: "/new/serial.log", iommu: false });
  deepEqual(
    (restored.net as Array<{ tap: string; mac: string; num_queues: number }>).map((n) => [
      n.tap,
      n.mac,
      n.num_queues,
    ]),
    [["t0", "52:54:00:99:99:99", 2], ["t1", "52:54:00:99:99:99", 2], [
      "t2",
      "52:54:00:99:99:99",
      2,
    ]],
    "taps are the spec's, the guest's MACs stay",
  );
  refuse({ ...three, cpus: 4 }, /saved with 2 vCPUs and 134217728 bytes of memory, the spec has 4/);
  refuse({ ...three, memoryMib: 256 }, /the spec has 2 and 268435456/);
  refuse({ ...three, disks: [] }, /saved with disks \[disk-root\], the spec has \[\]/);
  throws(() => chRestoredVmConfig([], spec, "/s/config.json"), /not a saved Cloud Hypervisor/);
});

Deno.test("chArgs() starts an empty VMM on the runtime dir's socket", () => {
  deepEqual(chArgs("/run/volant/vms/web"), ["--api-socket", "path=/run/volant/vms/web/ch.sock"]);
  deepEqual(chArgs("/run/volant/vms/web/"), ["--api-socket", "path=/run/volant/vms/web/ch.sock"]);
});
