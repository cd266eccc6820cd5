import { deepEqual, equal, ok } from "node:assert/strict";
import { bootEnvText } from "./boot_archive.ts";
import { hasCommand } from "./testing.ts";

const config = { v: 1, name: "web", hostname: "web", console_shell: false } as const;

Deno.test("bootEnvText(): the early workload's settings only under kestrel, ids only when set", () => {
  const early = { argv: ["/bin/app"], env: { PATH: "/bin" }, workdir: "/" };
  const text = bootEnvText(config, { init: "kestrel", early });
  ok(text.includes(`VOLANT_EARLY_EXEC=''\\''/bin/app'\\'''\n`), text);
  ok(text.includes("VOLANT_EARLY_UID=''\n"));
  equal(bootEnvText(config, { init: "none", exec: ["/bin/app"], early }).includes("EARLY"), false);
  equal(bootEnvText(config, { init: "kestrel" }).includes("EARLY"), false);
  ok(
    bootEnvText(config, { init: "kestrel", early: { ...early, uid: 7, gid: 8 } })
      .includes("VOLANT_EARLY_UID='7'\nVOLANT_EARLY_GID='8'\n"),
  );
});

Deno.test({
  name:
    "bootEnvText(): stage 0's shell gets back exactly the argv and environment, whatever they hold" +
    (hasCommand("busybox") ? "" : " (skipped: busybox is not installed)"),
  ignore: !hasCommand("busybox"),
  fn: async () => {
    const argv = ["/bin/printf", "%s\\n", "two words", "it's", '"dq"', "$HOME", "`id`", "a\nb", ""];
    const env = {
      A: "x y",
      B: "it's $(id) `id`",
      C: "line1\nline2",
      EMPTY: "",
      PATH: "/bin:/usr/bin",
    };
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/boot.env`,
        bootEnvText(config, { init: "kestrel", early: { argv, env, workdir: "/" } }),
      );
      // As stage 0 does it: source, eval the argv, eval the env words into `env -i`.
      const script = `. ${dir}/boot.env
eval "set -- $VOLANT_EARLY_EXEC"
for a in "$@"; do printf '[%s]' "$a"; done
echo
eval "set -- busybox env -i $VOLANT_EARLY_ENV busybox env"
"$@"`;
      const out = await new Deno.Command("busybox", { args: ["sh", "-c", script], stdout: "piped" })
        .output();
      ok(out.success);
      const text = new TextDecoder().decode(out.stdout);
      const args = argv.map((a) => `[${a}]`).join("") + "\n";
      equal(text.slice(0, args.length), args);
      const printed = text.slice(args.length);
      for (const [k, v] of Object.entries(env)) {
        ok(printed.includes(`${k}=${v}\n`), `${k}: ${printed}`);
      }
      deepEqual(
        printed.split("\n").filter((l) => /^[A-Z]+=/.test(l)).map((l) => l.split("=")[0]).sort(),
        ["A", "B", "C", "EMPTY", "PATH"],
        "nothing else in the environment",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
