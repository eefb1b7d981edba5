/** The one entry point of the shared contract; agent and coordinator import only this. */
export * from "./auth.js";
export * from "./canonical-json.js";
export * from "./config.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./incus-token.js";
export * from "./logger.js";
export * from "./messages.js";
export * from "./names.js";
export * from "./quorum.js";
export * from "./spec.js";
export * from "./subjects.js";
export * from "./validation.js";
export * from "./version.js";
export * from "./nats.js";
