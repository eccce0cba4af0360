// A pair's drill-down, opened by a click on an opportunity row: its net edge and basis over
// the last hour (the engine's per-minute history, then the stream's live updates), both
// books' depth to the size, the slippage curve (net edge against size, worked out by the
// server from the scanner's own depth walk) and, for funding pairs, each leg's funding
// history. Depth and curve are fetched again every few seconds while the panel is open.
// The plots are small inline SVGs: a size axis (the curve) is not a time axis, and the
// history mixes per-minute and per-second points.
import type { Store } from '../store';
import type { CurvePoint, DepthSide, FundingLegHistory, OpportunityDetail } from '../types';
import { dash, duration, h, intervalLabel, money, num, pct, price, qty, setText, signed } from '../format';

const REFRESH_MS = 3000;
const COLORS = { edge: '#4fc3f7', basis: '#ffb74d', long: '#4caf7a', short: '#ef6461' };

const MAX_LIVE = 3600; // live points kept (one per update at most each second)

export class DetailView {
  private id: string | null = null;
  private title = h('h2', { 'data-testid': 'detail-title' });
  private state = h('span', { class: 'pill', 'data-testid': 'detail-state' });
  private summary = h('div', { class: 'kv wrap small', 'data-testid': 'detail-summary' });
  private chartBox = h('div', { class: 'detail-chart', 'data-testid': 'detail-history-chart' });
  private historyNote = h('div', { class: 'dim small note', 'data-testid': 'detail-history-note' });
  private depth = h('div', { class: 'depth', 'data-testid': 'detail-depth' });
  private curve = h('div', { class: 'curve', 'data-testid': 'detail-curve' });
  private fundingBox = h('div', { class: 'funding-hist', 'data-testid': 'detail-funding' });
  private status = h('div', { class: 'dim small note', 'data-testid': 'detail-status' });
  private points: { t: number; edge: number; basis: number }[] = []; // t: engine time, s
  private timer = 0;
  private inFlight = false;
  private lastTs = 0;
  readonly el: HTMLElement;

  constructor(private store: Store, private onClose: () => void) {
    const close = h('button', { class: 'small-btn', 'data-testid': 'detail-close', title: 'Close (Esc)' }, '✕');
    close.onclick = () => this.close();
    this.el = h('aside', { class: 'panel detail', 'data-testid': 'detail', hidden: true },
      h('div', { class: 'panel-head' }, this.title, this.state, h('span', { class: 'grow' }), close),
      h('div', { class: 'detail-body' },
        this.summary,
        h('div', { class: 'sub' }, 'Net edge and basis, bps (per-minute medians, then live)'),
        h('div', { class: 'legend small' },
          h('span', { class: 'swatch', style: `background:${COLORS.edge}` }), 'net edge ',
          h('span', { class: 'swatch', style: `background:${COLORS.basis}` }), 'basis (sell mid against buy mid)'),
        this.chartBox, this.historyNote,
        h('div', { class: 'sub' }, 'Slippage: net edge against size'),
        this.curve,
        h('div', { class: 'sub' }, 'Depth to the size'),
        this.depth,
        this.fundingBox,
        this.status));
    window.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && this.id) this.close(); });
    store.on('opportunities', () => this.live());
  }

  open(id: string): void {
    if (id === this.id) return;
    this.id = id;
    this.el.hidden = false;
    this.el.dataset.id = id;
    delete this.el.dataset.loaded;
    setText(this.title, id.split(':').slice(1).join(' · ').replace(/ · ([^·]+) · ([^·]+)$/, ' · $1 → $2'));
    this.points = [];
    this.lastTs = 0;
    this.drawHistory();
    for (const el of [this.summary, this.depth, this.curve, this.fundingBox]) el.replaceChildren();
    setText(this.status, 'Loading…');
    window.clearInterval(this.timer);
    this.timer = window.setInterval(() => void this.fetch(false), REFRESH_MS);
    void this.fetch(true);
  }

  close(): void {
    this.id = null;
    this.el.hidden = true;
    window.clearInterval(this.timer);
    this.onClose();
  }

  private drawHistory(): void {
    const p = this.points;
    const next = plot([
      { xs: p.map((x) => x.t), ys: p.map((x) => x.edge), color: COLORS.edge },
      { xs: p.map((x) => x.t), ys: p.map((x) => x.basis), color: COLORS.basis },
    ], 'detail-history-plot', (y) => `${y.toFixed(1)} bps`, (x) => new Date(x * 1000).toLocaleTimeString('en-GB'), 170);
    // Redraw inside the same <svg>: the element stays put for readers and layout.
    const cur = this.chartBox.firstElementChild;
    if (cur) cur.replaceChildren(...next.childNodes);
    else this.chartBox.append(next);
    this.chartBox.dataset.points = String(p.length);
  }

  private async fetch(first: boolean): Promise<void> {
    const id = this.id;
    if (!id || this.inFlight || (!first && document.hidden)) return;
    this.inFlight = true;
    try {
      const res = await fetch(`/api/opportunities/${encodeURIComponent(id)}/detail`);
      if (id !== this.id) return;
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        setText(this.status, `No detail: ${(body as { detail?: string }).detail ?? res.statusText}`);
        return;
      }
      const d = (await res.json()) as OpportunityDetail;
      if (id !== this.id) return;
      if (first) this.history(d);
      this.show(d);
      this.el.dataset.loaded = 'true';
      this.el.dataset.fetches = String(Number(this.el.dataset.fetches ?? 0) + 1);
    } catch {
      setText(this.status, 'API unreachable; retrying…');
    } finally {
      this.inFlight = false;
    }
  }

  /** The per-minute history starts the chart; the stream's updates extend it. */
  private history(d: OpportunityDetail): void {
    for (const m of d.history.minutes) {
      if (m.median_basis_bps !== null) this.points.push({ t: m.minute_ns / 1e9, edge: m.median_edge_bps, basis: m.median_basis_bps });
    }
    this.chartBox.dataset.minutes = String(d.history.minutes.length);
    const hour = d.history.hour;
    setText(this.historyNote, hour && hour.observed_s > 0
      ? `Open ${pct(hour.open_fraction, 1)} of the last ${duration(hour.observed_s)} observed; `
        + `median net while open ${num(hour.median_open_edge_bps, 2)} bps over ${hour.samples} samples.`
      : 'No history yet: the pair has not been open since the engine started.');
    if (d.open) this.add(d.open.ts_ns, d.open.edge_bps, d.open.basis_bps);
    this.drawHistory();
  }

  private live(): void {
    if (!this.id) return;
    const row = this.store.rows.get(this.id);
    if (!row) return;
    setText(this.state, row.closedAt === null ? 'open' : `closed: ${row.opp.close_reason || 'gone'}`);
    this.state.className = `pill ${row.closedAt === null ? 'connected' : 'disconnected'}`;
    if (row.closedAt === null) this.add(row.opp.ts_ns, row.opp.edge_bps, row.opp.basis_bps);
  }

  private add(tsNs: number, edge: number, basis: number): void {
    if (tsNs <= this.lastTs || !Number.isFinite(edge) || !Number.isFinite(basis)) return;
    const t = tsNs / 1e9;
    const last = this.points[this.points.length - 1];
    if (last && t - last.t < 1) { // at most a point a second
      last.edge = edge;
      last.basis = basis;
    } else {
      this.points.push({ t, edge, basis });
    }
    if (this.points.length > MAX_LIVE) this.points.splice(0, this.points.length - MAX_LIVE);
    this.lastTs = tsNs;
    this.drawHistory();
  }

  private show(d: OpportunityDetail): void {
    const o = d.open;
    setText(this.state, o ? 'open' : 'closed');
    this.state.className = `pill ${o ? 'connected' : 'disconnected'}`;
    const kv = (label: string, value: string, testid: string, attrs: Record<string, string> = {}): HTMLElement =>
      h('span', { 'data-testid': testid, ...attrs }, h('span', { class: 'dim' }, `${label} `), value);
    this.summary.replaceChildren(
      kv('size', `${qty(d.size_base)} (${d.size_source})`, 'detail-size', { 'data-value': String(d.size_base) }),
      kv('net', o ? `${num(o.edge_bps, 2)} bps` : dash, 'detail-edge'),
      kv('profit', o ? signed(o.net_profit_quote, 2) : dash, 'detail-profit'),
      kv('basis', o ? `${num(o.basis_bps, 2)} bps` : dash, 'detail-basis'),
      kv('fees', `${pct(d.fees.buy, 3)} / ${pct(d.fees.sell, 3)}`, 'detail-fees',
        { 'data-buy': String(d.fees.buy), 'data-sell': String(d.fees.sell) }),
      kv('exit', d.exit_cost_per_unit === null ? dash : `${price(d.exit_cost_per_unit)}/unit`, 'detail-exit',
        { 'data-value': String(d.exit_cost_per_unit ?? '') }),
    );
    this.curve.replaceChildren(curveSvg(d.slippage), curveTable(d.slippage));
    this.curve.dataset.points = String(d.slippage.length);
    this.depth.replaceChildren(depthTable(d.depth.buy, 'buy'), depthTable(d.depth.sell, 'sell'));
    if (d.funding) {
      this.fundingBox.replaceChildren(h('div', { class: 'sub' }, 'Funding history, rate per interval'),
        fundingSvg(d.funding.long, d.funding.short),
        fundingLine(d.funding.long, 'long', COLORS.long), fundingLine(d.funding.short, 'short', COLORS.short));
    } else {
      this.fundingBox.replaceChildren();
    }
    setText(this.status, `Depth and curve as of the engine's ${new Date(d.now_ns / 1e6).toLocaleTimeString('en-GB')}, `
      + `refreshed every ${REFRESH_MS / 1000} s. Net = after taker fees on both legs`
      + (d.kind === 'spread' ? ' and the exit estimate.' : ' and crossing both books in and out, to the horizon.'));
  }
}

function depthTable(side: DepthSide, name: 'buy' | 'sell'): HTMLElement {
  const head = h('tr', {}, h('th', { class: 'num' }, 'Price'), h('th', { class: 'num' }, 'Qty'),
    h('th', { class: 'num' }, 'Cum qty'), h('th', { class: 'num' }, 'Cum notional'));
  const rows = side.levels.map((l) => h('tr', { 'data-testid': `detail-depth-${name}-row`, 'data-px': String(l.px),
    'data-qty': String(l.qty) },
  h('td', { class: 'num' }, price(l.px)), h('td', { class: 'num' }, qty(l.qty)),
  h('td', { class: 'num' }, qty(l.cum_qty)), h('td', { class: 'num' }, money(l.cum_notional_quote))));
  return h('div', { class: 'depth-side', 'data-testid': `detail-depth-${name}` },
    h('div', { class: 'small' }, h('b', {}, `${name === 'buy' ? 'Buy' : 'Sell'} ${side.venue}`),
      h('span', { class: 'dim' }, ` ${side.side} · ${side.symbol}`)),
    h('table', { class: 'grid' }, h('thead', {}, head), h('tbody', {}, ...rows)));
}

function curveTable(points: CurvePoint[]): HTMLElement {
  const head = h('tr', {}, ...['Size', 'Buy VWAP', 'Sell VWAP', 'Net bps', 'Net profit']
    .map((t) => h('th', { class: 'num' }, t)));
  // Every fourth point keeps the table short; the chart shows all of them.
  const rows = points.filter((_, i) => i % 4 === 3 || i === points.length - 1).map((p) => h('tr', {
    'data-testid': 'detail-curve-row', 'data-size': String(p.size_base), 'data-edge': String(p.edge_bps),
    'data-buy-vwap': String(p.buy_vwap), 'data-sell-vwap': String(p.sell_vwap), 'data-profit': String(p.net_profit_quote),
  }, h('td', { class: 'num' }, qty(p.size_base)), h('td', { class: 'num' }, price(p.buy_vwap)),
  h('td', { class: 'num' }, price(p.sell_vwap)), h('td', { class: `num ${p.edge_bps >= 0 ? 'pos' : 'neg'}` }, num(p.edge_bps, 2)),
  h('td', { class: 'num' }, signed(p.net_profit_quote, 2))));
  return h('table', { class: 'grid curve-table' }, h('thead', {}, head), h('tbody', {}, ...rows));
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A small line plot: x and y scaled to the box, a zero line when y crosses it. */
function plot(series: { xs: number[]; ys: number[]; color: string }[], testid: string, yLabel: (y: number) => string,
  xLabel: (x: number) => string, H = 120): SVGElement {
  const W = 560;
  const pad = { l: 56, r: 8, t: 8, b: 18 };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot', 'data-testid': testid });
  const xs = series.flatMap((s) => s.xs);
  const ys = series.flatMap((s) => s.ys);
  if (!xs.length) return root;
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const sx = (x: number): number => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number): number => pad.t + (1 - (y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  if (y0 < 0 && y1 > 0) root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: sy(0), y2: sy(0), class: 'zero' }));
  for (const s of series) {
    const d = s.xs.map((x, i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`).join('');
    root.append(svg('path', { d, stroke: s.color, fill: 'none', 'stroke-width': 1.6 }));
  }
  for (const [y, anchor] of [[y1, pad.t + 8], [y0, H - pad.b]] as const) {
    const t = svg('text', { x: pad.l - 4, y: anchor, 'text-anchor': 'end' });
    t.textContent = yLabel(y);
    root.append(t);
  }
  for (const [x, a] of [[x0, 'start'], [x1, 'end']] as const) {
    const t = svg('text', { x: sx(x), y: H - 4, 'text-anchor': a });
    t.textContent = xLabel(x);
    root.append(t);
  }
  return root;
}

function curveSvg(points: CurvePoint[]): SVGElement {
  return plot([{ xs: points.map((p) => p.size_base), ys: points.map((p) => p.edge_bps), color: COLORS.edge }],
    'detail-curve-plot', (y) => `${y.toFixed(2)} bps`, (x) => qty(x));
}

function fundingSvg(long: FundingLegHistory, short: FundingLegHistory): SVGElement {
  const line = (f: FundingLegHistory, color: string) => ({ xs: f.points.map((p) => p.ts_ns / 1e9),
    ys: f.points.map((p) => p.rate * 100), color });
  return plot([line(long, COLORS.long), line(short, COLORS.short)], 'detail-funding-plot',
    (y) => `${y.toFixed(4)}%`, (x) => new Date(x * 1000).toLocaleTimeString('en-GB'));
}

function fundingLine(f: FundingLegHistory, name: string, color: string): HTMLElement {
  const last = f.points[f.points.length - 1];
  return h('div', { class: 'legend-row small', 'data-testid': `detail-funding-${name}`, 'data-points': String(f.points.length) },
    h('span', { class: 'swatch', style: `background:${color}` }),
    h('b', {}, `${name} ${f.venue}`),
    h('span', { class: 'dim' }, last
      ? ` ${(last.rate * 100).toFixed(4)}% per ${intervalLabel(last.interval_h)} · ${f.points.length} points since `
        + new Date(f.points[0].ts_ns / 1e6).toLocaleTimeString('en-GB')
      : ' no funding seen yet'));
}
