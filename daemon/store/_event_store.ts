/** The {@linkcode EventStore} over `events` and `event_retention`. @module */
import type { DatabaseSync } from "node:sqlite";
import type { NewEvent, VolantEvent } from "../../schema/mod.ts";
import type { SqlRow } from "./_vm_store.ts";
import type { EventFilter, EventLogListener, EventStore } from "./types.ts";

/** Runs `fn` after the outermost transaction commits (at once outside any). */
export type AfterCommit = (fn: () => void) => void;

function toEvent(r: SqlRow): VolantEvent {
  return { id: Number(r.id), ...JSON.parse(String(r.data)) } as VolantEvent;
}

/** Builds the event store over an open database. */
export function createEventStore(
  db: DatabaseSync,
  afterCommit: AfterCommit,
  transaction: <T>(fn: () => T) => T,
): EventStore {
  const insert = db.prepare("INSERT INTO events (type, subject, at, data) VALUES (?, ?, ?, ?)");
  const after = db.prepare("SELECT id, data FROM events WHERE id > ? ORDER BY id LIMIT ?");
  const afterForVm = db.prepare(
    "SELECT id, data FROM events WHERE subject = ? AND id > ? AND type LIKE 'vm.%' " +
      "ORDER BY id LIMIT ?",
  );
  const oldest = db.prepare("SELECT MIN(id) AS id FROM events");
  const newest = db.prepare("SELECT MAX(id) AS id FROM events");
  const sequence = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'");
  const prunedThrough = db.prepare("SELECT pruned_through FROM event_retention WHERE id = 1");
  // The first event still young enough: everything before it may go (never one after it).
  const firstYoung = db.prepare("SELECT MIN(id) AS id FROM events WHERE at >= ?");
  const keepFrom = db.prepare("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?");
  const removeThrough = db.prepare("DELETE FROM events WHERE id <= ?");
  const setPruned = db.prepare("UPDATE event_retention SET pruned_through = ? WHERE id = 1");

  const listeners = new Set<EventLogListener>();
  const queue: VolantEvent[] = [];
  let delivering = false;
  /** In id order, also when a listener records an event while hearing one. */
  function deliver(event: VolantEvent): void {
    queue.push(event);
    if (delivering) return;
    delivering = true;
    try {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        for (const listener of [...listeners]) {
          try {
            listener(next);
          } catch {
            // A listener's failure is its own business.
          }
        }
      }
    } finally {
      delivering = false;
    }
  }

  const num = (r: SqlRow | undefined, key: string): number | null =>
    r === undefined || r[key] === null || r[key] === undefined ? null : Number(r[key]);

  return {
    append(event: NewEvent): VolantEvent {
      const { changes, lastInsertRowid } = insert.run(
        event.type,
        event.name,
        event.at,
        JSON.stringify(event),
      );
      if (Number(changes) !== 1) throw new Error("the event was not recorded");
      const stored = { id: Number(lastInsertRowid), ...event } as VolantEvent;
      afterCommit(() => deliver(stored));
      return stored;
    },
    after(id: number, limit: number, filter: EventFilter = {}): VolantEvent[] {
      const rows = filter.vm === undefined
        ? after.all(id, limit)
        : afterForVm.all(filter.vm, id, limit);
      return (rows as SqlRow[]).map(toEvent);
    },
    bounds() {
      return {
        oldest: num(oldest.get() as SqlRow | undefined, "id"),
        latest: num(sequence.get() as SqlRow | undefined, "seq") ?? 0,
        prunedThrough: num(prunedThrough.get() as SqlRow | undefined, "pruned_through") ?? 0,
      };
    },
    prune(olderThan: string, keep: number) {
      return transaction(() => {
        const done = num(prunedThrough.get() as SqlRow | undefined, "pruned_through") ?? 0;
        const young = num(firstYoung.get(olderThan) as SqlRow | undefined, "id");
        const byAge = young === null
          ? num(newest.get() as SqlRow | undefined, "id") ?? 0
          : young - 1;
        const byCount = num(
          keepFrom.get(Math.max(0, Math.trunc(keep))) as SqlRow | undefined,
          "id",
        ) ?? 0;
        const through = Math.max(byAge, byCount);
        if (through <= done) return { removed: 0, prunedThrough: done };
        const removed = Number(removeThrough.run(through).changes);
        setPruned.run(through);
        return { removed, prunedThrough: through };
      });
    },
    subscribe(listener: EventLogListener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
