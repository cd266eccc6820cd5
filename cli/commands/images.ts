/**
 * `volar images list | pull | rm`: the daemon's cache of OCI images and their shared root
 * filesystems. `pull` shows one progress bar per layer; `vms create --image` pulls the same way
 * before it creates the VM.
 *
 * @module
 */
import type { Command } from "commander";
import { absoluteImageSource } from "../../images/reference.ts";
import { ImageRecord } from "../../schema/image.ts";
import { ListImages, PullImage, RemoveImage } from "../../schema/operations/mod.ts";
import { formatBytes, formatKeyValues, formatTable, progressBar } from "../format.ts";
import type { Io } from "../io.ts";
import type { VolantClient } from "../client.ts";
import { readProgressStream, type StreamEvent } from "./_ndjson.ts";
import { globalFlags, printJson, withClient } from "./_context.ts";

/** How pull progress is shown: one line per layer, redrawn in place on a terminal. */
export class LayerBars {
  #io: Io;
  #live: boolean;
  #lines = new Map<string, string>();
  #drawn = 0;

  /** Draws on `io`'s stderr; `live` redraws in place (a terminal), else prints each change once. */
  constructor(io: Io, live: boolean) {
    this.#io = io;
    this.#live = live;
  }

  /** Takes one progress event of `POST /api/v1/images?progress=ndjson`. */
  update(event: StreamEvent): void {
    const key = String(event.layer ?? event.phase ?? "image");
    const text = event.phase === "download"
      ? `${key.slice(0, 19)} ${
        progressBar(Number(event.received ?? 0), (event.total as number | null) ?? null)
      }`
      : `${event.phase}: ${String(event.message ?? "")}`;
    if (!this.#live) {
      if (this.#lines.get(key) === undefined || event.phase !== "download") {
        this.#io.err(`${text}\n`);
      }
      this.#lines.set(key, text);
      return;
    }
    this.#lines.set(key, text);
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    const body = [...this.#lines.values()].map((l) => `\r\x1b[2K${l}\n`).join("");
    this.#io.err(`${up}${body}`);
    this.#drawn = this.#lines.size;
  }
}

/**
 * Pulls `ref` through the daemon with per-layer progress on stderr (none with `json`).
 *
 * @example
 * ```ts ignore
 * import { pullImage } from "./images.ts";
 * const image = await pullImage(client, io, "127.0.0.1:5000/demo/web:1.0", { insecure: true });
 * ```
 */
export async function pullImage(
  client: VolantClient,
  io: Io,
  ref: string,
  options: { insecure?: boolean; json?: boolean } = {},
): Promise<ImageRecord> {
  const res = await client.open(PullImage, { progress: "ndjson" }, {
    ref,
    insecure: options.insecure === true,
  });
  const bars = new LayerBars(io, io.errIsTerminal);
  const done = await readProgressStream(res, (event) => {
    if (!options.json) bars.update(event);
  });
  return ImageRecord.parse(done.image);
}

/** Registers `volar images`. */
export function registerImages(program: Command, io: Io): void {
  const images = program.command("images").description(
    "OCI images cached by the daemon (each with one shared root filesystem)",
  );

  images.command("list").alias("ls").description("list cached images")
    .action(async (_opts, cmd) => {
      const globals = globalFlags(cmd);
      const list = await withClient(globals, io, (c) => c.call(ListImages, {}));
      if (globals.json) return printJson(io, list);
      if (list.images.length === 0) {
        io.out("no images (volar images pull <ref>, or volar vms create <name> --image <ref>)\n");
        return;
      }
      io.out(
        formatTable(
          ["REF", "DIGEST", "ROOTFS", "LAYERS", "USED BY"],
          list.images.map((i) => [
            i.ref,
            i.digest.slice(0, 19),
            formatBytes(i.rootfs.size_bytes),
            String(i.layers.length),
            i.used_by.join(",") || "-",
          ]),
        ) + "\n",
      );
    });

  images.command("pull").description("pull an image and build its root filesystem")
    .argument(
      "<ref>",
      "a registry reference (e.g. 127.0.0.1:5000/demo/nginx:1.0), oci:<dir>[:tag] or " +
        "docker-archive:<file>",
      (value) => absoluteImageSource(value, Deno.cwd()),
    )
    .option("--insecure-registry", "talk plain HTTP to the registry")
    .action(async (ref, flags, cmd) => {
      const globals = globalFlags(cmd);
      const image = await withClient(globals, io, (client) =>
        pullImage(client, io, ref, {
          insecure: flags.insecureRegistry === true,
          json: globals.json,
        }));
      if (globals.json) return printJson(io, image);
      io.out(
        formatKeyValues([
          ["ref", image.ref],
          ["digest", image.digest],
          ["platform", image.platform],
          ["rootfs", `${image.rootfs.path} (${formatBytes(image.rootfs.size_bytes)})`],
          ["entrypoint", JSON.stringify(image.config.entrypoint)],
          ["cmd", JSON.stringify(image.config.cmd)],
        ]) + "\n",
      );
    });

  images.command("rm").alias("remove").description(
    "remove an image, its root filesystem and the layers no other image uses",
  )
    .argument("<ref>", "the reference or the digest")
    .action(async (ref, _flags, cmd) => {
      const globals = globalFlags(cmd);
      const removed = await withClient(
        globals,
        io,
        (c) => c.call(RemoveImage, { image: ref }),
      );
      if (globals.json) return printJson(io, removed);
      io.out(`removed ${removed.ref} (${removed.digest.slice(0, 19)})\n`);
    });
}
