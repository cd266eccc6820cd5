/**
 * `POST /api/v1/agui`: the handler of the AG-UI run (declared in `schema/operations/agui.ts`).
 * The app has checked the caller and validated the body; see `run.ts` for the run itself.
 *
 * @module
 */
import type { RunAgui } from "../../schema/operations/mod.ts";
import type { Handler } from "../api/route.ts";
import { aguiRun } from "./run.ts";

/** `POST /api/v1/agui`: one AG-UI run, as server-sent events. */
export const runAgui: Handler<typeof RunAgui> = ({ body, deps, caller }) =>
  aguiRun({ input: body, deps, caller });
