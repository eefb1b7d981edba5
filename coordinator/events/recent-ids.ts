/**
 * Ids seen lately, each kept until it is older than `keepMs` however many
 * come meanwhile: a count alone would forget an id while it still matters
 * whenever many events come at once (thousands of joins as a fleet forms).
 * Past `limit` the oldest go first all the same, so that a storm of ids
 * cannot take the memory.
 */
export class RecentIds {
  /** When each id was seen, oldest first: a Map iterates in insertion order, and an id seen again is moved to the end. */
  private readonly seenAt = new Map<string, number>();

  constructor(
    private readonly keepMs: number,
    private readonly limit: number,
  ) {}

  add(id: string, now: number): void {
    this.seenAt.delete(id);
    this.seenAt.set(id, now);
    for (const [oldest, at] of this.seenAt) {
      if (at >= now - this.keepMs && this.seenAt.size <= this.limit) break;
      this.seenAt.delete(oldest);
    }
  }

  has(id: string): boolean {
    return this.seenAt.has(id);
  }

  get size(): number {
    return this.seenAt.size;
  }
}
