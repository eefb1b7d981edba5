import type { LinkState } from "./health-types.js";

/** How many probe results of one link are kept: enough to tell a blip from a slow link. */
export const LINK_SAMPLES = 5;

/** A probe without an answer: the peer could not be reached. */
const NO_ANSWER = -1;
/** A probe the peer refused: the port is closed, but the link works. */
const REFUSED = -2;
/** Round trips are kept as whole microseconds below this, so that each stays a small integer V8 stores in place. */
const MAX_RTT_US = 2 ** 30 - 1;

/**
 * The last probes of one link, as one agent measured them. Every agent
 * reports a few links each beat and a coordinator keeps every link of every
 * member, so a probe is recorded in place: a ring of small integers, the
 * newest at `head`. Recording allocates nothing, and nothing it keeps ends in
 * the old generation of the heap to be collected there.
 */
export class LinkRecord {
  /** When the latest probe arrived. */
  at = 0;
  /** The latest probe's error, if it failed. */
  error: string | undefined = undefined;
  private readonly ring: number[] = new Array<number>(LINK_SAMPLES).fill(0);
  private head = -1;
  private count = 0;

  constructor(
    readonly to: string,
    public address: string,
  ) {}

  add(rttMs: number | null, error: string | undefined, at: number): void {
    this.head = (this.head + 1) % LINK_SAMPLES;
    this.ring[this.head] = rttMs === null ? (error === "ECONNREFUSED" ? REFUSED : NO_ANSWER) : Math.min(MAX_RTT_US, Math.round(rttMs * 1000));
    this.count = Math.min(this.count + 1, LINK_SAMPLES);
    this.error = error;
    this.at = at;
  }

  /** The latest probe's round trip, or null when it got no answer. */
  get rttMs(): number | null {
    const code = this.ring[this.head]!;
    return this.count === 0 || code < 0 ? null : code / 1000;
  }

  /** What the latest probe alone says of the link. */
  latestState(thresholdMs: number): LinkState {
    return this.count === 0 ? "ok" : stateOf(this.ring[this.head]!, thresholdMs);
  }

  /** The state of the link from its last `wanted` probes: it changes only when all of them agree, else `before` stands. */
  state(wanted: number, thresholdMs: number, before: LinkState): LinkState {
    if (this.count < wanted) return before;
    const first = stateOf(this.ring[this.head]!, thresholdMs);
    for (let i = 1; i < wanted; i++) {
      if (stateOf(this.ring[(this.head - i + LINK_SAMPLES) % LINK_SAMPLES]!, thresholdMs) !== first) return before;
    }
    return first;
  }
}

function stateOf(code: number, thresholdMs: number): LinkState {
  if (code === NO_ANSWER) return "down";
  if (code === REFUSED) return "ok";
  return code > thresholdMs * 1000 ? "slow" : "ok";
}
