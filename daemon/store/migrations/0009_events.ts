/**
 * Migration 9: the event log. Every change the daemon reports (`schema/event.ts`) is a row,
 * written in the same transaction as the change: `id` is the durable event id (AUTOINCREMENT,
 * so an id is never handed out twice, not even after every row was pruned), `type` and
 * `subject` (the name of what changed) are kept as columns for filtering, `at` (RFC 3339) for
 * retention, `data` is the event's JSON without its id. `event_retention.pruned_through` is the
 * highest id retention ever removed: a client resuming from an id below it has missed events.
 *
 * @module
 */
import type { Migration } from "../migrate.ts";

/** Creates `events` and `event_retention`. */
export const migration: Migration = {
  version: 9,
  name: "events",
  up: `
    CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      type TEXT NOT NULL,
      subject TEXT NOT NULL,
      at TEXT NOT NULL,
      data TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_at ON events (at);
    CREATE INDEX events_subject ON events (subject, id);
    CREATE TABLE event_retention (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      pruned_through INTEGER NOT NULL
    ) STRICT;
    INSERT INTO event_retention (id, pruned_through) VALUES (1, 0);
  `,
};
