/**
 * Every failure the project reports carries a stable code. Callers branch on
 * the code (or the class), never on message text.
 */
export const ErrorCode = {
  SpecInvalid: "FLEET_SPEC_INVALID",
  SpecConflict: "FLEET_SPEC_CONFLICT",
  MessageInvalid: "FLEET_MESSAGE_INVALID",
  AuthFailed: "FLEET_AUTH_FAILED",
  SessionUnknown: "FLEET_SESSION_UNKNOWN",
  UnknownCluster: "FLEET_UNKNOWN_CLUSTER",
  UnknownMember: "FLEET_UNKNOWN_MEMBER",
  NotInSpec: "FLEET_NOT_IN_SPEC",
  QuorumRefused: "FLEET_QUORUM_REFUSED",
  HeldDegraded: "FLEET_HELD_DEGRADED",
  Busy: "FLEET_BUSY",
  MaintenanceRefused: "FLEET_MAINTENANCE_REFUSED",
  IdentityMismatch: "FLEET_IDENTITY_MISMATCH",
  PayloadTooLarge: "FLEET_PAYLOAD_TOO_LARGE",
  RateLimited: "FLEET_RATE_LIMITED",
  NoCoordinator: "FLEET_NO_COORDINATOR",
  Unavailable: "FLEET_UNAVAILABLE",
  NotAllowed: "FLEET_NOT_ALLOWED",
  Incus: "FLEET_INCUS_ERROR",
  IncusUnreachable: "FLEET_INCUS_UNREACHABLE",
  TokenMismatch: "FLEET_TOKEN_MISMATCH",
  AgentUnreachable: "FLEET_AGENT_UNREACHABLE",
  Timeout: "FLEET_TIMEOUT",
  BadRequest: "FLEET_BAD_REQUEST",
  Unauthorized: "FLEET_UNAUTHORIZED",
  NotFound: "FLEET_NOT_FOUND",
  Internal: "FLEET_INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface Problem {
  /** Where the problem is, as a path into the input: `clusters.prod.members.node2.address`. */
  path: string;
  message: string;
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  FLEET_SPEC_INVALID: 400,
  FLEET_SPEC_CONFLICT: 409,
  FLEET_MESSAGE_INVALID: 400,
  FLEET_AUTH_FAILED: 403,
  FLEET_SESSION_UNKNOWN: 401,
  FLEET_UNKNOWN_CLUSTER: 404,
  FLEET_UNKNOWN_MEMBER: 404,
  FLEET_NOT_IN_SPEC: 403,
  FLEET_QUORUM_REFUSED: 409,
  FLEET_HELD_DEGRADED: 409,
  FLEET_BUSY: 409,
  FLEET_MAINTENANCE_REFUSED: 409,
  FLEET_IDENTITY_MISMATCH: 403,
  FLEET_PAYLOAD_TOO_LARGE: 413,
  FLEET_RATE_LIMITED: 429,
  FLEET_NO_COORDINATOR: 503,
  FLEET_UNAVAILABLE: 503,
  FLEET_NOT_ALLOWED: 405,
  FLEET_INCUS_ERROR: 502,
  FLEET_INCUS_UNREACHABLE: 502,
  FLEET_TOKEN_MISMATCH: 502,
  FLEET_AGENT_UNREACHABLE: 504,
  FLEET_TIMEOUT: 504,
  FLEET_BAD_REQUEST: 400,
  FLEET_UNAUTHORIZED: 401,
  FLEET_NOT_FOUND: 404,
  FLEET_INTERNAL: 500,
};

export class FleetError extends Error {
  readonly code: ErrorCode;
  readonly problems: Problem[];
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; problems?: Problem[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FleetError";
    this.code = code;
    this.problems = options.problems ?? [];
  }
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
  toJSON(): WireError {
    return this.problems.length > 0
      ? { code: this.code, message: this.message, problems: this.problems }
      : { code: this.code, message: this.message };
  }
}

export class SpecError extends FleetError {
  constructor(given: Problem[]) {
    // A key that is the empty string has an empty path: it is named as such rather than not at all.
    const problems = given.map((p) => (p.path === "" ? { ...p, path: '""' } : p));
    const first = problems[0];
    const summary = first ? `${first.path}: ${first.message}` : "invalid spec";
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
    super(ErrorCode.SpecInvalid, `spec rejected: ${summary}${more}`, { problems });
    this.name = "SpecError";
  }
}

/** An error answered by the Incus REST API, with its HTTP status. */
export class IncusError extends FleetError {
  readonly status: number;
  constructor(status: number, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.Incus, message, options);
    this.name = "IncusError";
    this.status = status;
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
  problems?: Problem[];
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.values(ErrorCode).includes(value as ErrorCode);
}

/** Turns anything thrown into a FleetError without losing a code it already had. */
export function asFleetError(err: unknown): FleetError {
  if (err instanceof FleetError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FleetError(ErrorCode.Internal, message, { cause: err });
}
