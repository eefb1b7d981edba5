import { evacuateLogic } from "./evacuate.js";
import { joinLogic } from "./join.js";
import type { OperationLogic } from "./logic.js";
import type { OperationKind, OperationOf } from "./operation.js";
import { removeLogic } from "./remove.js";
import { restoreLogic } from "./restore.js";
import { rolloutLogic } from "./rollout.js";

/** The logic of every kind of operation. */
export const OPERATION_LOGIC: { [K in OperationKind]: OperationLogic<OperationOf<K>> } = {
  join: joinLogic,
  remove: removeLogic,
  evacuate: evacuateLogic,
  restore: restoreLogic,
  rollout: rolloutLogic,
};
