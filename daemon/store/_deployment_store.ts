/** The {@linkcode DeploymentStore} over `deployments`. @module */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { type DeploymentFailure, type DeploymentTemplate, VolantError } from "../../schema/mod.ts";
import type { SqlRow } from "./_vm_store.ts";
import type { DeploymentPatch, DeploymentRow, DeploymentStore, NewDeployment } from "./types.ts";

function toDeployment(r: SqlRow): DeploymentRow {
  return {
    id: Number(r.id),
    name: String(r.name),
    replicas: Number(r.replicas),
    template: JSON.parse(String(r.template)) as DeploymentTemplate,
    generation: Number(r.generation),
    max_unavailable: Number(r.max_unavailable),
    deleting: Number(r.deleting) === 1,
    failures: JSON.parse(String(r.failures)) as DeploymentFailure[],
    created_at: String(r.created_at),
    updated_at: String(r.updated_at),
  };
}

/** Builds the deployment store over an open database. */
export function createDeploymentStore(db: DatabaseSync, now: () => Date): DeploymentStore {
  const byName = db.prepare("SELECT * FROM deployments WHERE name = ?");
  const all = db.prepare("SELECT * FROM deployments ORDER BY name");
  const insert = db.prepare(
    "INSERT INTO deployments (name, replicas, template, generation, max_unavailable, " +
      "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const remove = db.prepare("DELETE FROM deployments WHERE name = ?");

  const get = (name: string) => {
    const r = byName.get(name) as SqlRow | undefined;
    return r === undefined ? undefined : toDeployment(r);
  };

  return {
    get,
    list: () => (all.all() as SqlRow[]).map(toDeployment),
    insert(d: NewDeployment) {
      const ts = now().toISOString();
      try {
        insert.run(
          d.name,
          d.replicas,
          JSON.stringify(d.template),
          d.generation,
          d.max_unavailable,
          ts,
          ts,
        );
      } catch (err) {
        if (/UNIQUE constraint failed: deployments\.name/.test(String(err))) {
          throw new VolantError("already_exists", `Deployment ${d.name} already exists`, {
            name: d.name,
          });
        }
        throw err;
      }
      return get(d.name)!;
    },
    update(name: string, patch: DeploymentPatch) {
      const values: Record<string, SQLInputValue> = { updated_at: now().toISOString() };
      if (patch.replicas !== undefined) values.replicas = patch.replicas;
      if (patch.template !== undefined) values.template = JSON.stringify(patch.template);
      if (patch.generation !== undefined) values.generation = patch.generation;
      if (patch.max_unavailable !== undefined) values.max_unavailable = patch.max_unavailable;
      if (patch.deleting !== undefined) values.deleting = patch.deleting ? 1 : 0;
      if (patch.failures !== undefined) values.failures = JSON.stringify(patch.failures);
      const sets = Object.keys(values).map((k) => `${k} = :${k}`).join(", ");
      const result = db.prepare(`UPDATE deployments SET ${sets} WHERE name = :name`).run({
        ...values,
        name,
      });
      if (Number(result.changes) === 0) {
        throw new VolantError("not_found", `Deployment ${name} does not exist`, { name });
      }
      return get(name)!;
    },
    delete: (name) => Number(remove.run(name).changes) > 0,
  };
}
