/** The volantd version reported by `/healthz` and the OpenAPI document. @module */
export { VERSION } from "../schema/version.ts";
