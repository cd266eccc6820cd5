/** The volantd version reported by `/healthz` and the OpenAPI document. @module */

/** volantd's version. */
export const VERSION = "0.1.0";
