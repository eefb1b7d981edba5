import Type, { type Static } from "typebox";
import { NAME_PATTERN } from "../names.js";

/** The fields messages are made of. */
export const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63 });
export const Address = Type.String({ minLength: 1, maxLength: 255 });
export const Text = Type.String({ maxLength: 4096 });
export const Nonce = Type.String({ pattern: "^[0-9a-f]{32,64}$" });
export const Challenge = Type.String({ pattern: "^[0-9a-f]{16,200}\\.[0-9]{1,16}\\.[0-9a-f]{64}$", maxLength: 300 });
export const Instance = Type.String({ pattern: "^[0-9a-f-]{8,64}$" });
export const Millis = Type.Number({ minimum: 0 });
export const Timestamp = Type.Number({ minimum: 0 });
export const StringMap = Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }));
export const Fingerprint = Type.String({ pattern: "^[0-9a-f]{64}$" });

/**
 * Who is speaking: the agent process (`instance`), its message number in
 * this session (`seq`, rising) and when it sent it, by its best estimate of
 * the coordinator's clock (`sentAt`). Together they let a coordinator refuse
 * a message played back later, even one captured before it restarted.
 */
export const FromAgent = {
  cluster: Name,
  node: Name,
  instance: Instance,
  seq: Type.Integer({ minimum: 1 }),
  sentAt: Timestamp,
};

export const ErrorBody = Type.Object({
  code: Type.String({ maxLength: 64 }),
  message: Text,
});
export type ErrorBody = Static<typeof ErrorBody>;
