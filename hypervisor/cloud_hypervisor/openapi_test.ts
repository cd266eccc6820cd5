import { deepEqual, equal, ok } from "node:assert/strict";
import { testVmShapes } from "../testing/fake_ch_vmm.ts";
import { OpenApiContract } from "../testing/openapi_contract.ts";
import { CH_API_BASE, CH_ENDPOINTS } from "./api.ts";
import { chArgs, chVmConfig } from "./config.ts";

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
      for (const [action, e] of Object.entries(CH_ENDPOINTS)) {
        if (action === "create") continue;
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

Deno.test("chArgs() starts an empty VMM on the runtime dir's socket", () => {
  deepEqual(chArgs("/run/volant/vms/web"), ["--api-socket", "path=/run/volant/vms/web/ch.sock"]);
  deepEqual(chArgs("/run/volant/vms/web/"), ["--api-socket", "path=/run/volant/vms/web/ch.sock"]);
});
