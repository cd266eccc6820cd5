/** kestrel's version, reported in the ready line and by `kestrel --version`. @module */

/** kestrel's version. */
export const KESTREL_VERSION = "0.1.0";
