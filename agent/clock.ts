import type { ServerTimes } from "../shared/index.js";

export interface ClockSample {
  /** The coordinators' clock minus this host's. */
  offsetMs: number;
  rttMs: number;
}

/** A wall clock that moved this far against the monotonic one was stepped: measurements from before it are void. */
export const CLOCK_STEP_MS = 250;

/** The wall clock's lead over the monotonic one: it moves when the host's clock is stepped, and only slowly when it is slewed. */
export const wallLead = () => Date.now() - performance.now();

/**
 * One measurement from one exchange, as NTP takes it: `sent` and `received`
 * by this host's clock, `times` by the coordinator's. The time the
 * coordinator held the request (a held pull, a reconcile awaited) is taken
 * out of the round trip and does not skew the offset.
 */
export function clockSampleFrom(sent: number, times: ServerTimes, received: number): ClockSample {
  const held = Math.max(0, times.answered - times.received);
  return { offsetMs: (times.received - sent + (times.answered - received)) / 2, rttMs: Math.max(0, received - sent - held) };
}

/** How many recent measurements the best is picked from. */
const KEPT = 3;

/**
 * The clock offset as the last few measurements tell it: the one with the
 * shortest round trip, as NTP's clock filter picks. A delay on one way only
 * (a stalled event loop, a request buffered through a reconnect) skews an
 * offset by up to half its round trip, and makes that round trip long; one
 * such measurement must not stand for the host's clock until the next.
 * A step of the host's clock voids every measurement taken before it.
 */
export class ClockFilter {
  private kept: { sample: ClockSample; at: number }[] = [];
  private lead = wallLead();

  /** `leadAtSent`: the wall clock's lead when the exchange began; a step during the exchange spoils the measurement. */
  add(sample: ClockSample, leadAtSent: number): void {
    const lead = wallLead();
    if (Math.abs(lead - leadAtSent) > CLOCK_STEP_MS) return;
    if (this.stepped()) this.kept = [];
    this.lead = lead;
    this.kept.push({ sample, at: performance.now() });
    if (this.kept.length > KEPT) this.kept.shift();
  }

  private stepped(): boolean {
    return Math.abs(wallLead() - this.lead) > CLOCK_STEP_MS;
  }

  get best(): ClockSample | null {
    if (this.stepped()) return null;
    let best: ClockSample | null = null;
    for (const k of this.kept) if (!best || k.sample.rttMs < best.rttMs) best = k.sample;
    return best;
  }

  /** How long ago the last measurement was taken: none, or only ones from before a step of the clock, is forever. */
  ageMs(): number {
    const last = this.kept[this.kept.length - 1];
    return !last || this.stepped() ? Infinity : performance.now() - last.at;
  }

  forget(): void {
    this.kept = [];
  }
}
