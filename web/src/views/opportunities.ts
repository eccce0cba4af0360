// Opportunities table: spread / funding tabs, filters, sortable columns, ticking "alive",
// open rows above closed ones, and closed rows fading out (with the close reason) before
// they go. The All tab never sorts a spread edge and a carry as one quantity: each has its
// own column, and rows rank by net profit in quote currency. A click on a row opens its
// drill-down.
import { type Row, type Store } from '../store';
import type { FundingOpportunity, Kind } from '../types';
import { countdown, dash, duration, h, money, num, pct, price, qty, setText, signed } from '../format';

type View = Kind | 'all';

/** Rows rendered at most (the best ones in the current order); the count says how many match. */
const MAX_ROWS = 300;
type Dir = 'asc' | 'desc';

interface Column {
  key: string;
  label: (v: View) => string;
  title: string;
  views: View[];
  numeric: boolean;
  value?: (r: Row, s: Store) => number | string; // sort key (also data-value); none: not sortable
  text: (r: Row, s: Store) => string;
  cls?: (r: Row) => string;
}

const ALL: View[] = ['spread', 'funding', 'all'];
const KINDS: View[] = ['spread', 'funding'];
const fund = (r: Row): FundingOpportunity | null => (r.opp.kind === 'funding' ? r.opp : null);
const tone = (x: number): string => (x > 0 ? 'pos' : x < 0 ? 'neg' : '');
const rate = (x: number, ih: number): string => `${(x * 100).toFixed(4)}%/${ih || '?'}h`;
const NONE = -Infinity; // sort key of a cell that does not apply to the row's kind

const COLUMNS: Column[] = [
  { key: 'asset', label: () => 'Asset', title: 'Canonical asset', views: ALL, numeric: false,
    value: (r) => r.opp.asset, text: (r) => r.opp.asset, cls: () => 'asset' },
  { key: 'kind', label: () => 'Kind', title: 'spread or funding carry', views: ['all'], numeric: false,
    value: (r) => r.opp.kind, text: (r) => r.opp.kind },
  { key: 'buy_venue', label: (v) => (v === 'funding' ? 'Long' : v === 'spread' ? 'Buy' : 'Buy/long'),
    title: 'Venue to buy on (spread) or hold the long leg (funding)', views: ALL, numeric: false,
    value: (r) => r.opp.buy_venue, text: (r) => r.opp.buy_venue },
  { key: 'sell_venue', label: (v) => (v === 'funding' ? 'Short' : v === 'spread' ? 'Sell' : 'Sell/short'),
    title: 'Venue to sell on (spread) or hold the short leg (funding)', views: ALL, numeric: false,
    value: (r) => r.opp.sell_venue, text: (r) => r.opp.sell_venue },
  { key: 'size_base', label: () => 'Size', title: 'Executable size, base units', views: ALL, numeric: true,
    value: (r) => r.opp.size_base, text: (r) => qty(r.opp.size_base) },
  { key: 'notional_quote', label: () => 'Notional', title: 'Size in quote currency', views: ALL, numeric: true,
    value: (r) => r.opp.notional_quote, text: (r) => money(r.opp.notional_quote) },
  { key: 'buy_px', label: () => 'Buy VWAP', title: 'Average price of the buy leg at the size (title: the worst level reached)',
    views: ['spread'], numeric: true, value: (r) => r.opp.buy_px, text: (r) => price(r.opp.buy_px) },
  { key: 'sell_px', label: () => 'Sell VWAP', title: 'Average price of the sell leg at the size (title: the worst level reached)',
    views: ['spread'], numeric: true, value: (r) => r.opp.sell_px, text: (r) => price(r.opp.sell_px) },
  { key: 'net_profit_quote', label: () => 'Net profit',
    title: 'Expected net profit at the size, quote currency (spread: size × net edge; funding: net carry to the horizon)',
    views: ALL, numeric: true, value: (r) => r.opp.net_profit_quote, text: (r) => signed(r.opp.net_profit_quote, 2),
    cls: (r) => `strong ${tone(r.opp.net_profit_quote)}` },
  { key: 'edge_bps', label: (v) => (v === 'funding' ? 'Carry bps' : 'Net bps'),
    title: 'Spread: net edge after taker fees both legs and the exit estimate, bps. Funding: net carry to the horizon, bps of notional',
    views: KINDS, numeric: true, value: (r) => r.opp.edge_bps, text: (r) => num(r.opp.edge_bps, 2),
    cls: (r) => `strong ${tone(r.opp.edge_bps)}` },
  { key: 'spread_edge_bps', label: () => 'Spread net bps', title: 'Spread rows: net edge now, bps (not comparable with a carry)',
    views: ['all'], numeric: true, value: (r) => (fund(r) ? NONE : r.opp.edge_bps),
    text: (r) => (fund(r) ? dash : num(r.opp.edge_bps, 2)), cls: (r) => (fund(r) ? 'dim' : tone(r.opp.edge_bps)) },
  { key: 'carry_bps', label: () => 'Carry bps', title: 'Funding rows: net carry to the horizon, bps of notional (not an instant edge)',
    views: ['all'], numeric: true, value: (r) => (fund(r) ? r.opp.edge_bps : NONE),
    text: (r) => (fund(r) ? `${num(r.opp.edge_bps, 2)}/${fund(r)!.horizon_h}h` : dash),
    cls: (r) => (fund(r) ? tone(r.opp.edge_bps) : 'dim') },
  { key: 'gross_bps', label: () => 'Gross bps', title: 'Edge before fees, bps (funding: the carry before costs)', views: KINDS,
    numeric: true, value: (r) => r.opp.gross_bps, text: (r) => num(r.opp.gross_bps, 2) },
  { key: 'apr', label: () => 'APR', title: 'Annualized funding differential (funding only)',
    views: ['funding', 'all'], numeric: true, value: (r) => fund(r)?.apr ?? NONE,
    text: (r) => (fund(r) ? pct(fund(r)!.apr, 1) : dash), cls: (r) => (fund(r) ? tone(fund(r)!.apr) : '') },
  { key: 'rates', label: () => 'Rates L / S', title: 'Funding rate per interval, long leg / short leg',
    views: ['funding'], numeric: false,
    text: (r) => { const f = fund(r)!; return `${rate(f.long_rate, f.long_interval_h)} · ${rate(f.short_rate, f.short_interval_h)}`; },
    cls: () => 'dim small' },
  { key: 'next_funding', label: () => 'Next L / S', title: 'Time to each leg\'s next settlement',
    views: ['funding'], numeric: false,
    text: (r, s) => { const f = fund(r)!; return `${countdown(f.long_next_funding_ns / 1e6 - s.now())} · ${countdown(f.short_next_funding_ns / 1e6 - s.now())}`; },
    cls: () => 'dim small' },
  { key: 'break_even_h', label: () => 'Break-even', title: 'Hours until the carry pays entry and exit costs',
    views: ['funding'], numeric: true, value: (r) => fund(r)?.break_even_h ?? Infinity,
    text: (r) => { const b = fund(r)?.break_even_h; return b === null || b === undefined ? dash : `${num(b, 1)}h`; } },
  { key: 'alive_s', label: () => 'Alive', title: 'Time since first seen', views: ALL, numeric: true,
    value: (r, s) => s.aliveS(r), text: (r, s) => duration(s.aliveS(r)) },
  { key: 'status', label: () => 'Status', title: 'open, or why it closed (shown while it fades)', views: ALL, numeric: false,
    text: (r) => (r.closedAt === null ? 'open' : `closed: ${r.opp.close_reason || 'gone'}`),
    cls: (r) => (r.closedAt === null ? 'status-open' : 'status-closed') },
];

const DEFAULT_SORT: Record<View, string> = { spread: 'edge_bps', funding: 'net_profit_quote', all: 'net_profit_quote' };

interface Filters {
  asset: string; minEdge: number | null; minApr: number | null; venue: string; hideClosed: boolean; minAliveS: number | null;
}

export class OpportunitiesView {
  private view: View = 'spread';
  private sort: { key: string; dir: Dir } = { key: DEFAULT_SORT.spread, dir: 'desc' };
  private filters: Filters = { asset: '', minEdge: null, minApr: null, venue: '', hideClosed: false, minAliveS: null };
  private selected: string | null = null;
  /** Called with a row's id when it is clicked (the drill-down opens). */
  onSelect: ((id: string) => void) | null = null;
  private trs = new Map<string, { tr: HTMLTableRowElement; tds: Map<string, HTMLTableCellElement> }>();
  private thead = h('thead');
  private tbody = h('tbody', { 'data-testid': 'opp-body' });
  private empty = h('div', { class: 'empty', 'data-testid': 'opp-empty' }, 'Waiting for data…');
  private tabs = new Map<View, HTMLButtonElement>();
  private venueSelect = h('select', { 'data-testid': 'filter-venue', title: 'Either leg on this venue' });
  private aprInput: HTMLInputElement;
  private shown = h('span', { class: 'dim', 'data-testid': 'opp-count' });
  readonly el: HTMLElement;

  constructor(private store: Store) {
    const tabBar = h('div', { class: 'tabs', role: 'tablist' });
    for (const [v, label] of [['spread', 'Spread'], ['funding', 'Funding'], ['all', 'All']] as [View, string][]) {
      const b = h('button', { class: 'tab', role: 'tab', 'data-testid': `tab-${v}`, 'data-view': v }, label);
      b.onclick = () => { this.view = v; this.rebuildHead(); this.render(); };
      this.tabs.set(v, b);
      tabBar.append(b);
    }
    const assetInput = h('input', { type: 'search', placeholder: 'asset', size: 7, 'data-testid': 'filter-asset',
      autocomplete: 'off', spellcheck: 'false' });
    assetInput.oninput = () => { this.filters.asset = assetInput.value.trim().toUpperCase(); this.render(); };
    const edgeInput = h('input', { type: 'number', step: '0.5', placeholder: 'bps', 'data-testid': 'filter-min-edge',
      class: 'narrow' });
    edgeInput.oninput = () => { this.filters.minEdge = parseNum(edgeInput.value); this.render(); };
    this.aprInput = h('input', { type: 'number', step: '1', placeholder: '%', 'data-testid': 'filter-min-apr',
      class: 'narrow' });
    this.aprInput.oninput = () => {
      const p = parseNum(this.aprInput.value);
      this.filters.minApr = p === null ? null : p / 100;
      this.render();
    };
    this.venueSelect.onchange = () => { this.filters.venue = this.venueSelect.value; this.render(); };
    const hideClosed = h('input', { type: 'checkbox', 'data-testid': 'filter-hide-closed' });
    hideClosed.onchange = () => { this.filters.hideClosed = hideClosed.checked; this.render(); };
    const aliveInput = h('input', { type: 'number', step: '1', min: '0', placeholder: 's', class: 'narrow',
      'data-testid': 'filter-min-alive' });
    aliveInput.oninput = () => { this.filters.minAliveS = parseNum(aliveInput.value); this.render(); };
    const fadeInput = h('input', { type: 'number', step: '1', min: '0', class: 'narrow', 'data-testid': 'setting-closed-fade',
      value: String(store.closedFadeS) });
    fadeInput.oninput = () => {
      const v = parseNum(fadeInput.value);
      if (v !== null && v >= 0) { store.setClosedFade(v); this.render(); }
    };
    const filters = h('div', { class: 'filters' },
      h('label', {}, 'Asset ', assetInput),
      h('label', { title: 'Minimum net edge, bps' }, 'Min net ', edgeInput),
      h('label', { class: 'apr-filter', title: 'Minimum APR, % (funding rows only)' }, 'Min APR ', this.aprInput),
      h('label', {}, 'Venue ', this.venueSelect),
      h('label', { title: 'Only rows alive at least this long, seconds' }, 'Min alive ', aliveInput),
      h('label', { title: 'Hide closed rows (otherwise they fade out below the open ones)' }, hideClosed, ' hide closed'),
      h('label', { title: 'Seconds a closed row stays, fading (kept in this browser)' }, 'Fade ', fadeInput, ' s'),
      this.shown);
    const table = h('table', { class: 'grid opp', 'data-testid': 'opp-table' }, this.thead, this.tbody);
    this.el = h('section', { class: 'panel opps', 'data-testid': 'opportunities' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Opportunities'), tabBar, filters),
      h('div', { class: 'scroll' }, table, this.empty));
    this.rebuildHead();
    store.on('opportunities', () => this.schedule());
    store.on('venues', () => this.syncVenues());
  }

  private pending = false;
  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    window.setTimeout(() => { this.pending = false; this.render(); }, 30);
  }

  private columns(): Column[] {
    return COLUMNS.filter((c) => c.views.includes(this.view));
  }

  private syncVenues(): void {
    const ids = this.store.venueIds();
    const have = [...this.venueSelect.options].map((o) => o.value).slice(1);
    if (have.join() === ids.join()) return;
    const cur = this.venueSelect.value;
    this.venueSelect.replaceChildren(h('option', { value: '' }, 'any'), ...ids.map((v) => h('option', { value: v }, v)));
    this.venueSelect.value = ids.includes(cur) ? cur : '';
  }

  private rebuildHead(): void {
    for (const [v, b] of this.tabs) b.setAttribute('aria-selected', String(v === this.view));
    this.el.dataset.view = this.view;
    this.aprInput.disabled = this.view === 'spread';
    if (!this.columns().some((c) => c.key === this.sort.key)) this.sort = { key: DEFAULT_SORT[this.view], dir: 'desc' };
    const tr = h('tr');
    for (const c of this.columns()) {
      const sortable = !!c.value;
      const active = this.sort.key === c.key;
      const th = h('th', {
        class: `${c.numeric ? 'num' : ''} ${sortable ? 'sortable' : ''} ${active ? 'sorted' : ''}`,
        'data-testid': `opp-th-${c.key}`, 'data-col': c.key, title: c.title,
        'aria-sort': active ? (this.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none',
      }, c.label(this.view), active ? (this.sort.dir === 'asc' ? ' ▲' : ' ▼') : '');
      if (sortable) th.onclick = () => this.sortBy(c);
      tr.append(th);
    }
    this.thead.replaceChildren(tr);
    for (const { tr: row } of this.trs.values()) row.remove();
    this.trs.clear(); // cells differ per view: rebuild rows
  }

  private sortBy(c: Column): void {
    if (this.sort.key === c.key) this.sort.dir = this.sort.dir === 'asc' ? 'desc' : 'asc';
    else this.sort = { key: c.key, dir: c.numeric ? 'desc' : 'asc' };
    this.rebuildHead();
    this.render();
  }

  private passes(r: Row): boolean {
    const o = r.opp;
    const f = this.filters;
    if (this.view !== 'all' && o.kind !== this.view) return false;
    if (f.asset && !o.asset.includes(f.asset)) return false;
    if (f.venue && o.buy_venue !== f.venue && o.sell_venue !== f.venue) return false;
    if (f.minEdge !== null && o.edge_bps < f.minEdge) return false;
    if (f.minApr !== null && this.view !== 'spread' && (o.kind !== 'funding' || o.apr < f.minApr)) return false;
    if (f.hideClosed && r.closedAt !== null) return false;
    if (f.minAliveS !== null && this.store.aliveS(r) < f.minAliveS) return false;
    return true;
  }

  select(id: string | null): void {
    this.selected = id;
    for (const [rid, { tr }] of this.trs) tr.classList.toggle('selected', rid === id);
    if (id !== null) this.onSelect?.(id);
  }

  /** Re-render rows in place: reuse each row's element, update only changed text, reorder. */
  render(): void {
    const s = this.store;
    s.expire();
    const cols = this.columns();
    const all = [...s.rows.values()];
    const col = cols.find((c) => c.key === this.sort.key)!;
    const sign = this.sort.dir === 'asc' ? 1 : -1;
    const rows = all.filter((r) => this.passes(r));
    const keyed = rows.map((r) => ({ r, k: col.value!(r, s) }));
    const closed = (r: Row): number => (r.closedAt === null ? 0 : 1);
    keyed.sort((a, b) => closed(a.r) - closed(b.r) || sign * (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)
      || (a.r.opp.id < b.r.opp.id ? -1 : 1));
    const matching = keyed.length;
    keyed.length = Math.min(keyed.length, MAX_ROWS);

    const keep = new Set<string>();
    let i = 0;
    for (const { r } of keyed) {
      const id = r.opp.id;
      keep.add(id);
      let entry = this.trs.get(id);
      if (!entry) {
        const tds = new Map<string, HTMLTableCellElement>();
        const tr = h('tr', { 'data-testid': 'opp-row', 'data-id': id });
        tr.onclick = () => this.select(id);
        for (const c of cols) {
          const td = h('td', { 'data-col': c.key });
          tds.set(c.key, td);
          tr.append(td);
        }
        entry = { tr, tds };
        this.trs.set(id, entry);
      }
      const { tr, tds } = entry;
      const state = r.closedAt === null ? 'open' : 'closed';
      if (tr.dataset.state !== state) tr.dataset.state = state;
      tr.dataset.asset = r.opp.asset;
      tr.dataset.kind = r.opp.kind;
      tr.classList.toggle('fresh', r.openedAt > 0 && Date.now() - r.openedAt < 1500);
      tr.classList.toggle('selected', id === this.selected);
      const opacity = r.closedAt === null ? '' : (0.5 * (1 - s.faded(r)) + 0.1).toFixed(2);
      if (tr.style.opacity !== opacity) tr.style.opacity = opacity;
      tr.title = r.closedAt === null ? `${r.opp.buy_symbol} → ${r.opp.sell_symbol}`
        : `closed (${r.opp.close_reason || 'gone'}); peak ${num(r.opp.peak_edge_bps, 2)} bps net`;
      for (const c of cols) {
        const td = tds.get(c.key)!;
        setText(td, c.text(r, s));
        const cls = `${c.numeric ? 'num' : ''} ${c.cls ? c.cls(r) : ''}`.trim();
        if (td.className !== cls) td.className = cls;
        if (c.key === 'buy_px' || c.key === 'sell_px') {
          td.title = `worst level ${price(c.key === 'buy_px' ? r.opp.buy_worst_px : r.opp.sell_worst_px)}`;
        }
        if (c.value) {
          const v = String(c.value(r, s));
          if (td.dataset.value !== v) td.dataset.value = v;
        }
      }
      if (this.tbody.children[i] !== tr) this.tbody.insertBefore(tr, this.tbody.children[i] ?? null);
      i += 1;
    }
    for (const [id, { tr }] of this.trs) {
      if (!keep.has(id)) {
        tr.remove();
        this.trs.delete(id);
      }
    }

    const open = (k: Kind): number => all.filter((r) => r.opp.kind === k && r.closedAt === null).length;
    setText(this.tabs.get('spread')!, `Spread (${open('spread')})`);
    setText(this.tabs.get('funding')!, `Funding (${open('funding')})`);
    setText(this.tabs.get('all')!, `All (${open('spread') + open('funding')})`);
    setText(this.shown, matching > keyed.length ? `${keyed.length} of ${matching} shown` : `${matching} shown`);
    this.empty.hidden = keyed.length > 0;
    setText(this.empty, s.summary === null ? 'Waiting for data…'
      : all.length ? 'No opportunities match the filters.' : 'No open opportunities right now.');
  }
}

function parseNum(s: string): number | null {
  if (s.trim() === '') return null;
  const x = Number(s);
  return Number.isFinite(x) ? x : null;
}
