/** The Volant release version, shared by volantd, volar and kestrel so they cannot drift. @module */

/** Volant's version. */
export const VERSION = "0.1.0";
