// The dashboard's state: the last snapshot plus every incremental message applied to it.
import type {
  Alert, FundingMatrix, Opportunity, OpportunityEvent, ServerMessage, Summary, VenueStatus,
} from './types';

/** How long a closed opportunity stays on screen by default (fading, with its close
 * reason); the table's setting changes it and localStorage keeps the choice. */
export const CLOSED_FADE_S = 6;
const FADE_KEY = 'perparb.closedFadeS';
const MAX_ALERTS = 50;

export interface Row {
  opp: Opportunity;
  receivedAt: number; // Date.now() when the latest event arrived
  closedAt: number | null; // Date.now() of the close event; null while open
  openedAt: number; // Date.now() of the open event (for a brief highlight), 0 if from a snapshot
}

export type Topic = 'opportunities' | 'settings' | 'venues' | 'funding' | 'summary' | 'alerts' | 'connection';

export class Store {
  rows = new Map<string, Row>();
  venues: VenueStatus[] = [];
  funding: FundingMatrix = {};
  summary: Summary | null = null;
  alerts: Alert[] = [];
  alertsEnabled: boolean | null = null; // null: not known yet
  connected = false;
  lastMessageAt = 0;
  /** engine time minus local time, ms (so countdowns follow the server clock) */
  clockOffsetMs = 0;
  /** Seconds a closed row stays on screen, fading (0: it goes at once). */
  closedFadeS = loadFade();

  private listeners = new Map<Topic, Set<() => void>>();

  on(topic: Topic, fn: () => void): void {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic)!.add(fn);
  }

  emit(topic: Topic): void {
    this.listeners.get(topic)?.forEach((fn) => fn());
  }

  /** Engine time now, in ms. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  setConnected(up: boolean): void {
    this.connected = up;
    this.emit('connection');
  }

  apply(msg: ServerMessage): void {
    this.lastMessageAt = Date.now();
    switch (msg.type) {
      case 'batch':
        for (const m of msg.messages) this.apply(m);
        break;
      case 'snapshot': {
        this.rows.clear();
        for (const o of msg.opportunities) this.rows.set(o.id, { opp: o, receivedAt: Date.now(), closedAt: null, openedAt: 0 });
        this.venues = msg.venues;
        this.funding = msg.funding;
        this.setSummary(msg.summary);
        this.alerts = [...msg.alerts].reverse().slice(0, MAX_ALERTS);
        for (const t of ['opportunities', 'venues', 'funding', 'summary', 'alerts'] as Topic[]) this.emit(t);
        break;
      }
      case 'opportunities':
        for (const ev of msg.events) this.applyEvent(ev);
        this.emit('opportunities');
        break;
      case 'venue_status':
        this.venues = msg.data;
        this.emit('venues');
        break;
      case 'funding':
        this.funding = { ...this.funding, [msg.asset]: msg.data };
        this.emit('funding');
        break;
      case 'summary':
        this.setSummary(msg.data);
        this.emit('summary');
        break;
      case 'alert':
        this.addAlerts([msg.data]);
        break;
      case 'price_update':
      case 'error':
      case 'fill': // paper trading: the paper view reads these itself
      case 'position':
      case 'pnl':
        break;
    }
  }

  private setSummary(s: Summary): void {
    this.summary = s;
    // Follow the engine clock, ignoring jitter under a second (its clock moves in sweeps).
    const offset = s.engine_time_ns / 1e6 - Date.now();
    if (Math.abs(offset - this.clockOffsetMs) > 1000) this.clockOffsetMs = offset;
  }

  private applyEvent(ev: OpportunityEvent): void {
    const { event, ...opp } = ev;
    const now = Date.now();
    const prev = this.rows.get(opp.id);
    if (event === 'close') {
      if (prev) this.rows.set(opp.id, { ...prev, opp: opp as Opportunity, receivedAt: now, closedAt: now });
      return;
    }
    const reopened = !prev || prev.closedAt !== null;
    this.rows.set(opp.id, {
      opp: opp as Opportunity,
      receivedAt: now,
      closedAt: null,
      openedAt: event === 'open' || reopened ? now : prev.openedAt,
    });
  }

  setClosedFade(seconds: number): void {
    this.closedFadeS = seconds;
    try {
      window.localStorage.setItem(FADE_KEY, String(seconds));
    } catch {
      // storage disabled (private mode): the setting lasts for this page only
    }
  }

  /** How far a closed row has faded, 0 (just closed) to 1 (about to go). */
  faded(r: Row): number {
    if (r.closedAt === null) return 0;
    const ms = this.closedFadeS * 1000;
    return ms > 0 ? Math.min(1, (Date.now() - r.closedAt) / ms) : 1;
  }

  /** Drop closed rows that have lingered long enough; true if any went. */
  expire(): boolean {
    const now = Date.now();
    let gone = false;
    for (const [id, r] of this.rows) {
      if (r.closedAt !== null && now - r.closedAt > this.closedFadeS * 1000) {
        this.rows.delete(id);
        gone = true;
      }
    }
    return gone;
  }

  addAlerts(list: Alert[]): void {
    const seen = new Set(this.alerts.map(alertKey));
    const fresh = list.filter((a) => !seen.has(alertKey(a)));
    if (!fresh.length) return;
    this.alerts = [...fresh, ...this.alerts].sort((a, b) => b.ts_ns - a.ts_ns).slice(0, MAX_ALERTS);
    this.emit('alerts');
  }

  /** Seconds an opportunity has been alive (frozen once closed). */
  aliveS(r: Row): number {
    if (r.closedAt !== null) return r.opp.alive_s;
    return Math.max(r.opp.alive_s, (this.now() - r.opp.first_seen_ns / 1e6) / 1000);
  }

  venueIds(): string[] {
    const ids = this.venues.map((v) => v.venue);
    for (const cells of Object.values(this.funding)) for (const v of Object.keys(cells)) if (!ids.includes(v)) ids.push(v);
    return ids;
  }

  assets(): string[] {
    const set = new Set(Object.keys(this.funding));
    for (const r of this.rows.values()) set.add(r.opp.asset);
    return [...set].sort();
  }
}

function loadFade(): number {
  try {
    const v = Number(window.localStorage.getItem(FADE_KEY));
    if (window.localStorage.getItem(FADE_KEY) !== null && Number.isFinite(v) && v >= 0) return v;
  } catch {
    // no storage: the default
  }
  return CLOSED_FADE_S;
}

export const alertKey = (a: Alert): string => `${a.ts_ns}:${a.opportunity_id}`;
