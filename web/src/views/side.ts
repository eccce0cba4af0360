// Smaller panels: rejected candidates by reason, recent alerts, header.
import type { Store } from '../store';
import type { AlertsResponse } from '../types';
import { clock, h, num, setText } from '../format';

const REASONS: Record<string, string> = {
  stale: 'quote older than the venue limit',
  disconnected: 'a leg venue is disconnected',
  unsynced: 'order book not synced',
  one_sided: 'a book or quote side is empty',
  crossed: 'crossed book or quote',
  ambiguous: 'ambiguous instrument mapping',
  inactive: 'contract not active',
  unverified: 'contract not verified by metadata',
  below_threshold: 'net edge under the minimum',
  below_min_size: 'size under the venue minimum',
};

function describe(reason: string): string {
  const base = reason.replace(/^funding_/, '');
  const text = REASONS[base] ?? reason;
  return base === reason ? `spread: ${text}` : `funding carry: ${text}`;
}

export class RejectionsView {
  private list = h('div', { class: 'bars', 'data-testid': 'rejections' });
  readonly el: HTMLElement;

  constructor(private store: Store) {
    this.el = h('section', { class: 'panel', 'data-testid': 'rejections-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Rejected candidates'), h('span', { class: 'dim small' }, 'since start')),
      this.list);
    store.on('summary', () => this.render());
  }

  render(): void {
    const rej = Object.entries(this.store.summary?.rejections ?? {}).sort((a, b) => b[1] - a[1]);
    if (!rej.length) {
      this.list.replaceChildren(h('div', { class: 'empty' }, 'None yet.'));
      return;
    }
    const max = Math.max(...rej.map(([, n]) => n));
    this.list.replaceChildren(...rej.map(([reason, n]) => h('div', {
      class: 'bar', 'data-testid': `rejection-${reason}`, 'data-count': n, title: describe(reason),
    }, h('span', { class: 'bar-label' }, reason.replaceAll('_', ' ')),
    h('span', { class: 'bar-track' }, h('span', { class: 'bar-fill', style: `width:${Math.max(2, (100 * n) / max)}%` })),
    h('span', { class: 'num' }, n.toLocaleString()))));
  }
}

export class AlertsView {
  private list = h('ul', { class: 'alerts', 'data-testid': 'alerts' });
  private state = h('span', { class: 'dim small', 'data-testid': 'alerts-state' });
  readonly el: HTMLElement;

  constructor(private store: Store) {
    this.el = h('section', { class: 'panel', 'data-testid': 'alerts-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Alerts'), this.state), this.list);
    store.on('alerts', () => this.render());
    void this.poll();
    window.setInterval(() => void this.poll(), 10_000);
  }

  private async poll(): Promise<void> {
    try {
      const res = await fetch('/api/alerts');
      if (!res.ok) return;
      const body = (await res.json()) as AlertsResponse;
      this.store.alertsEnabled = body.enabled;
      this.store.addAlerts(body.recent);
      this.render();
    } catch {
      /* the stream banner already says the API is unreachable */
    }
  }

  render(): void {
    const s = this.store;
    setText(this.state, s.alertsEnabled === false ? 'not enabled (no alert rules)' : `${s.alerts.length} recent`);
    if (!s.alerts.length) {
      this.list.replaceChildren(h('li', { class: 'empty' },
        s.alertsEnabled === false ? 'Alerts are not enabled: add [alerts] rules to the config.' : 'No alerts yet.'));
      return;
    }
    this.list.replaceChildren(...s.alerts.slice(0, 20).map((a) => h('li', { title: a.body, 'data-testid': 'alert-item' },
      h('span', { class: 'dim' }, clock(a.ts_ns)), ' ', h('span', { class: `badge k-${a.kind}` }, a.kind), ' ', a.title)));
  }
}

export class HeaderView {
  private ws = h('span', { class: 'pill', 'data-testid': 'ws-status' }, 'connecting');
  private venues = h('span', { 'data-testid': 'hdr-venues' });
  private opps = h('span', { 'data-testid': 'hdr-open' });
  private best = h('span', { 'data-testid': 'hdr-best' });
  private msgs = h('span', {});
  private time = h('span', { class: 'dim' });
  readonly el: HTMLElement;

  constructor(private store: Store) {
    this.el = h('header', {}, h('h1', {}, 'perparb'), h('span', { class: 'dim' }, 'cross-venue perp arbitrage'),
      this.ws, h('div', { class: 'stats' }, this.venues, this.opps, this.best, this.msgs, this.time));
    store.on('summary', () => this.render());
  }

  setStream(connected: boolean, retryInMs: number | null): void {
    setText(this.ws, connected ? 'live' : `reconnecting${retryInMs ? ` in ${(retryInMs / 1000).toFixed(1)}s` : ''}`);
    this.ws.className = `pill ${connected ? 'connected' : 'disconnected'}`;
    this.ws.dataset.state = connected ? 'live' : 'reconnecting';
  }

  render(): void {
    const s = this.store.summary;
    if (!s) return;
    setText(this.venues, `venues ${s.venues_connected}/${s.venues}`);
    this.venues.className = s.venues_connected < s.venues ? 'warn-text' : '';
    setText(this.opps, `open ${s.open_opportunities.spread ?? 0} spread · ${s.open_opportunities.funding ?? 0} funding`);
    const b = s.best_spread;
    setText(this.best, b ? `best ${b.asset} ${b.buy_venue}→${b.sell_venue} ${num(b.edge_bps, 1)} bps` : 'best —');
    setText(this.msgs, `${s.messages.toLocaleString()} msgs`);
    setText(this.time, `engine ${clock(s.engine_time_ns)}`);
  }
}
