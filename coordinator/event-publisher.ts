import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { EventKinds, Subject, type EventKind, type FleetEvent, type Logger } from "../shared/index.js";

export interface EventSink {
  publish(cluster: string, kind: EventKind, message: string, extra?: { node?: string; data?: Record<string, unknown> }): FleetEvent;
}

const encoder = new TextEncoder();
const RECENT_LIMIT = 2_000;

/**
 * Publishes fleet events on NATS (`fleet.v1.events.<cluster>.<kind>`), keeps
 * the recent ones for status pages, and tells local listeners.
 */
export class EventPublisher implements EventSink {
  private seq = 0;
  private readonly boot = randomUUID().slice(0, 8);
  private readonly recentEvents: FleetEvent[] = [];
  private readonly listeners = new Set<(event: FleetEvent) => void>();

  constructor(
    private readonly nc: NatsConnection | null,
    private readonly log: Logger,
  ) {}

  publish(cluster: string, kind: EventKind, message: string, extra: { node?: string; data?: Record<string, unknown> } = {}): FleetEvent {
    this.seq += 1;
    const event: FleetEvent = {
      id: `${this.boot}-${this.seq}`,
      seq: this.seq,
      at: new Date().toISOString(),
      cluster,
      kind,
      severity: EventKinds[kind].severity,
      ...(extra.node ? { node: extra.node } : {}),
      message,
      data: extra.data ?? {},
    };
    this.recentEvents.push(event);
    if (this.recentEvents.length > RECENT_LIMIT) this.recentEvents.splice(0, this.recentEvents.length - RECENT_LIMIT);
    const level = event.severity === "info" ? "info" : event.severity === "warning" ? "warn" : "error";
    this.log[level]({ event: { kind, cluster, node: event.node, seq: event.seq, data: event.data } }, message);
    if (this.nc && !this.nc.isClosed()) this.nc.publish(Subject.event(cluster, kind), encoder.encode(JSON.stringify(event)));
    for (const listener of this.listeners) listener(event);
    return event;
  }

  recent(filter: { cluster?: string; kinds?: readonly EventKind[]; limit?: number } = {}): FleetEvent[] {
    const matched = this.recentEvents.filter((e) => (!filter.cluster || e.cluster === filter.cluster) && (!filter.kinds || filter.kinds.includes(e.kind)));
    return matched.slice(-(filter.limit ?? 100));
  }

  onEvent(listener: (event: FleetEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
