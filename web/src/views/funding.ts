// The funding-arbitrage board, asset x venue: rate per interval, interval badge, APR and a
// live countdown to each venue's next settlement, with the widest APR spread per asset
// (long the lowest, short the highest) next to the asset. The asset column stays put while
// the venue columns scroll sideways; a click on "Widest" ranks assets by that spread.
import type { Store } from '../store';
import type { FundingCell } from '../types';
import { countdown, dash, h, intervalLabel, pct, setText } from '../format';

export class FundingView {
  private table = h('table', { class: 'grid funding', 'data-testid': 'funding-matrix' });
  private empty = h('div', { class: 'empty' }, 'Waiting for funding data…');
  private shape = '';
  private byWidest = false;
  readonly el: HTMLElement;

  constructor(private store: Store) {
    this.el = h('section', { class: 'panel funding-panel', 'data-testid': 'funding' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Funding board'),
        h('span', { class: 'dim small' }, 'rate per interval · APR · time to settlement')),
      h('div', { class: 'scroll board', 'data-testid': 'funding-scroll' }, this.table, this.empty));
    store.on('funding', () => this.render());
    store.on('venues', () => this.render());
  }

  render(): void {
    const s = this.store;
    const assets = Object.keys(s.funding).sort();
    if (this.byWidest) {
      const w = Object.fromEntries(assets.map((a) => [a, widest(s.funding[a])?.spread ?? -Infinity]));
      assets.sort((a, b) => w[b] - w[a] || (a < b ? -1 : 1));
    }
    const venues = s.venueIds();
    const shape = `${assets.join()}|${venues.join()}|${this.byWidest}`;
    if (shape !== this.shape) this.build(assets, venues, shape);
    this.empty.hidden = assets.length > 0;
    this.tick();
  }

  private build(assets: string[], venues: string[], shape: string): void {
    this.shape = shape;
    const sortHead = h('th', {
      class: `sortable ${this.byWidest ? 'sorted' : ''}`, 'data-testid': 'funding-sort-widest',
      'aria-sort': this.byWidest ? 'descending' : 'none',
      title: 'Widest APR spread: long the lowest rate, short the highest. Click to rank assets by it (again: by name)',
    }, this.byWidest ? 'Widest ▼' : 'Widest');
    sortHead.onclick = () => { this.byWidest = !this.byWidest; this.shape = ''; this.render(); };
    const head = h('tr', {}, h('th', { class: 'sticky-col' }, 'Asset'), sortHead,
      ...venues.map((v) => h('th', { class: 'venue-col', 'data-venue': v, 'data-testid': `funding-venue-${v}` }, v)));
    const body = assets.map((a) => h('tr', { 'data-asset': a, 'data-testid': 'funding-row' },
      h('td', { class: 'asset sticky-col', 'data-testid': `funding-asset-${a}` }, a),
      h('td', { class: 'widest small', 'data-testid': `funding-widest-${a}` }),
      ...venues.map((v) => h('td', { class: 'fcell', 'data-testid': `funding-cell-${a}-${v}`, 'data-asset': a, 'data-venue': v },
        h('div', { class: 'line1' },
          h('span', { class: 'rate', 'data-testid': 'funding-rate' }),
          h('span', { class: 'badge', 'data-testid': 'funding-interval' })),
        h('div', { class: 'line2' },
          h('span', { class: 'apr', 'data-testid': 'funding-apr' }),
          h('span', { class: 'countdown', 'data-testid': 'funding-countdown' }))))));
    this.table.replaceChildren(h('thead', {}, head), h('tbody', {}, ...body));
  }

  /** Refresh values and countdowns (called every second and on every funding message). */
  tick(): void {
    const s = this.store;
    const now = s.now();
    for (const td of this.table.querySelectorAll<HTMLTableCellElement>('td.fcell')) {
      const cell = s.funding[td.dataset.asset!]?.[td.dataset.venue!];
      const q = (id: string): HTMLElement => td.querySelector(`[data-testid="${id}"]`)!;
      if (!cell) {
        setText(q('funding-rate'), dash);
        setText(q('funding-interval'), '');
        setText(q('funding-apr'), '');
        setText(q('funding-countdown'), '');
        continue;
      }
      const rate = q('funding-rate');
      setText(rate, `${(cell.rate * 100).toFixed(4)}%`);
      rate.className = `rate ${cell.rate > 0 ? 'pos' : cell.rate < 0 ? 'neg' : ''}`;
      const badge = q('funding-interval');
      setText(badge, intervalLabel(cell.interval_h));
      badge.className = `badge i${Math.round(cell.interval_h)}`;
      setText(q('funding-apr'), pct(cell.apr, 1));
      const left = cell.next_funding_ns / 1e6 - now;
      const cd = q('funding-countdown');
      setText(cd, countdown(left));
      cd.dataset.ms = String(Math.round(left));
      cd.classList.toggle('soon', left < 10 * 60_000);
      td.title = `${cell.symbol}: ${(cell.rate * 100).toFixed(5)}% per ${intervalLabel(cell.interval_h)}`
        + (cell.predicted_rate !== null ? `, next ${(cell.predicted_rate * 100).toFixed(5)}%` : '')
        + `; settles ${new Date(cell.next_funding_ns / 1e6).toLocaleString()}; data age ${cell.age_ms} ms`;
    }
    for (const [asset, cells] of Object.entries(s.funding)) {
      const td = this.table.querySelector<HTMLElement>(`[data-testid="funding-widest-${asset}"]`);
      if (!td) continue;
      const w = widest(cells);
      if (!w) { setText(td, dash); delete td.dataset.spread; continue; }
      const text = `${pct(w.spread, 1)}|L ${w.long} · S ${w.short}`;
      td.dataset.spread = String(w.spread);
      if (td.dataset.text !== text) {
        td.dataset.text = text;
        td.replaceChildren(h('b', {}, pct(w.spread, 1)), h('br'), `L ${w.long} · S ${w.short}`);
      }
    }
  }
}

/** The widest APR spread of one asset: long the venue with the lowest APR, short the highest. */
function widest(cells: Record<string, FundingCell> | undefined): { spread: number; long: string; short: string } | null {
  const list = Object.entries(cells ?? {}).filter(([, c]) => c.apr !== null) as [string, { apr: number }][];
  if (list.length < 2) return null;
  list.sort((a, b) => a[1].apr - b[1].apr);
  const [lo, hi] = [list[0], list[list.length - 1]];
  return { spread: hi[1].apr - lo[1].apr, long: lo[0], short: hi[0] };
}
