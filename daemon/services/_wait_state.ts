/** Waiting for a VM to reach a state, driven by the service's events. @module */
import { type VmRecord, type VmState, VolantError } from "../../schema/mod.ts";
import { reachableWithoutRequest } from "../vm_state.ts";
import { toRecord, type VmRuntime } from "./_runtime.ts";

/**
 * Resolves once VM `name` is in `state`. Rejects with `timeout` after `timeoutMs`, with
 * `invalid_state` when the VM is (or gets) in a state from which `state` cannot follow
 * without another request, and with `not_found` when it does not exist or is deleted. The
 * cancel function is kept in `waits` while it waits (the service fails them all on close).
 */
export async function waitForState(
  rt: VmRuntime,
  waits: Set<(err: VolantError) => void>,
  name: string,
  state: VmState,
  timeoutMs: number,
): Promise<VmRecord> {
  return await new Promise<VmRecord>((resolve, reject) => {
    let settled = false;
    const timer: { id?: ReturnType<typeof setTimeout> } = {};
    let last: VmRecord | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      clearTimeout(timer.id);
      waits.delete(cancel);
      fn();
    };
    const cancel = (err: VolantError) => finish(() => reject(err));
    const check = (record: VmRecord | undefined, deleted: boolean) => {
      if (!record || deleted) {
        const what = deleted ? "was deleted" : "does not exist";
        return cancel(new VolantError("not_found", `VM ${name} ${what}`, { name }));
      }
      last = record;
      if (record.state === state) return finish(() => resolve(record));
      if (!reachableWithoutRequest(record.state, state)) {
        const why = record.last_error ? ` (last error: ${record.last_error})` : "";
        cancel(
          new VolantError(
            "invalid_state",
            `VM ${name} is ${record.state}; it cannot become ${state} without another ` +
              `request${why}`,
            { name, state: record.state, wanted: state },
          ),
        );
      }
    };
    const unsubscribe = rt.events.subscribe((event) => {
      if (event.name !== name) return;
      if (event.type === "vm.state" || event.type === "vm.deleted") {
        check(event.vm, event.type === "vm.deleted");
      }
    });
    waits.add(cancel);
    const row = rt.store.get(name);
    check(row ? toRecord(row) : undefined, false);
    if (settled) return;
    timer.id = setTimeout(() => {
      cancel(
        new VolantError(
          "timeout",
          `VM ${name} did not become ${state} within ${timeoutMs} ms (it is ${
            last?.state ?? "unknown"
          })`,
          { name, state: last?.state, wanted: state, timeout_ms: timeoutMs },
        ),
      );
    }, timeoutMs);
  });
}
