/**
 * mcr's version, read from deno.json (the one place it is written).
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };

/** mcr's version (from deno.json). */
export const MCR_VERSION: string = denoJson.version;
