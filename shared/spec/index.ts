export * from "./build.js";
export * from "./export.js";
export * from "./input.js";
export * from "./model.js";
export * from "./parse.js";
export { placeholderName, PILLAR_KEYS } from "./salt.js";
