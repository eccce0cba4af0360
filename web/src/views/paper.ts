// Paper trading: positions per pair (both legs, liquidation distance), PnL split, equity
// curve, fills, risk limits with their utilisation, and the kill switch.
// REST (/api/paper/*) gives the full state every few seconds; the /ws stream's fill,
// position and pnl messages update it in between.
import {
  ColorType, LineSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp,
} from 'lightweight-charts';
import type { PaperFill, PaperLeg, PaperPair, PaperPnl, PaperRisk, ServerMessage } from '../types';
import { clock, dash, h, money, num, pct, qty, setText } from '../format';

const POLL_MS = 3000;
const MAX_FILLS = 15;
const TOKEN_KEY = 'perparb-api-token';

export class PaperView {
  private state = h('span', { class: 'pill', 'data-testid': 'kill-state' }, '…');
  private killBtn = h('button', { class: 'danger', 'data-testid': 'kill-btn', title: 'Stop new orders (needs the API token)' },
    'Kill switch');
  private resumeBtn = h('button', { 'data-testid': 'resume-btn', title: 'Release the kill switch (needs the API token)' },
    'Resume');
  private flatten = h('input', { type: 'checkbox', 'data-testid': 'kill-flatten' });
  private msg = h('span', { class: 'dim small', 'data-testid': 'kill-msg' });
  private pnl = h('div', { class: 'kv wrap', 'data-testid': 'paper-pnl' });
  private chartBox = h('div', { class: 'chart small-chart', 'data-testid': 'paper-equity' });
  private positions = h('div', { 'data-testid': 'paper-positions' });
  private fills = h('tbody', { 'data-testid': 'paper-fills' });
  private risk = h('div', { class: 'bars', 'data-testid': 'paper-risk' });
  private rejections = h('div', { class: 'dim small note', 'data-testid': 'paper-rejections' });
  private body: HTMLElement;
  private off = h('div', { class: 'empty', 'data-testid': 'paper-disabled' }, 'Checking…');
  private chart: IChartApi | null = null;
  private equity: ISeriesApi<'Line'> | null = null;
  private lastT = -1;
  private fillRows: PaperFill[] = [];
  private available: boolean | null = null;
  private refreshTimer = 0;
  readonly el: HTMLElement;

  constructor() {
    this.killBtn.onclick = () => void this.post('/api/paper/kill', { flatten: this.flatten.checked, reason: 'dashboard' });
    this.resumeBtn.onclick = () => void this.post('/api/paper/resume', {});
    const fillTable = h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
      ...['time', 'venue', 'asset', 'side', 'qty', 'px', 'fee', ''].map((c) => h('th', {}, c)))), this.fills);
    this.body = h('div', { class: 'paper-body', 'data-testid': 'paper-body' },
      this.pnl,
      h('div', { class: 'sub' }, 'Equity'), this.chartBox,
      h('div', { class: 'sub' }, 'Positions per pair'), this.positions,
      h('div', { class: 'sub' }, 'Risk limits in use'), this.risk, this.rejections,
      h('div', { class: 'sub' }, 'Fills'), fillTable);
    this.body.hidden = true;
    this.el = h('section', { class: 'panel paper', 'data-testid': 'paper' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Paper trading'), this.state,
        h('div', { class: 'filters' }, h('label', {}, this.flatten, ' flatten'), this.killBtn, this.resumeBtn),
        this.msg),
      this.off, this.body);
    void this.poll();
    window.setInterval(() => void this.poll(), POLL_MS);
  }

  /** Stream messages: pnl and fills apply at once; a position change refreshes positions soon. */
  apply(msg: ServerMessage): void {
    if (msg.type === 'batch') {
      for (const m of msg.messages) this.apply(m);
    } else if (msg.type === 'pnl') {
      this.renderPnl(msg.data);
      if (msg.data.ts_ns !== null) this.addPoint(msg.data.ts_ns, msg.data.equity);
    } else if (msg.type === 'fill') {
      this.fillRows = [msg.data, ...this.fillRows.filter((f) => f.id !== msg.data.id)].slice(0, MAX_FILLS);
      this.renderFills();
    } else if (msg.type === 'position') {
      this.soon();
    }
  }

  private soon(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = 0;
      void this.poll();
    }, 300);
  }

  private async poll(): Promise<void> {
    if (document.hidden && this.available) return;
    try {
      if (this.available === null) {
        const spec = (await (await fetch('/openapi.json')).json()) as { paths?: Record<string, unknown> };
        this.available = '/api/paper/positions' in (spec.paths ?? {});
      }
      if (!this.available) return this.disabled('This server has no paper trading API.');
      const [pos, pnl, fills, risk] = await Promise.all(
        ['/api/paper/positions', '/api/paper/pnl', `/api/paper/fills?limit=${MAX_FILLS}`, '/api/paper/risk'].map((u) => fetch(u)));
      if (pos.status === 409) {
        const body = (await pos.json().catch(() => ({}))) as { detail?: string };
        return this.disabled(`Paper trading is not enabled on this server${body.detail ? ` (${body.detail})` : ''}.`);
      }
      if (![pos, pnl, fills, risk].every((r) => r.ok)) throw new Error('paper API error');
      this.off.hidden = true;
      this.body.hidden = false;
      this.renderPositions(((await pos.json()) as { pairs: PaperPair[] }).pairs);
      const p = (await pnl.json()) as PaperPnl & { curve: { ts_ns: number; equity: number }[] };
      this.renderPnl(p);
      this.ensureChart();
      for (const pt of p.curve) this.addPoint(pt.ts_ns, pt.equity);
      this.fillRows = (await fills.json()) as PaperFill[];
      this.renderFills();
      this.renderRisk((await risk.json()) as PaperRisk);
    } catch {
      setText(this.msg, 'paper API unreachable; retrying…');
    }
  }

  private disabled(text: string): void {
    this.body.hidden = true;
    this.off.hidden = false;
    setText(this.off, text);
    this.killBtn.disabled = this.resumeBtn.disabled = true;
  }

  private renderPnl(p: PaperPnl): void {
    const net = p.spread_pnl + p.funding_pnl - p.fees;
    const items: [string, number | null, string][] = [
      ['spread', p.spread_pnl, 'spread'], ['realized', p.realized_pnl, 'realized'],
      ['unrealized', p.unrealized_pnl, 'unrealized'], ['funding', p.funding_pnl, 'funding'],
      ['fees', -p.fees, 'fees'], ['net', net, 'net'], ['equity', p.equity, 'equity']];
    this.pnl.replaceChildren(...items.map(([label, v, key]) => h('span', { 'data-k': key, 'data-v': v ?? '' }, `${label} `,
      h('b', { class: key === 'equity' || v === null ? '' : v > 0 ? 'pos' : v < 0 ? 'neg' : '' }, money(v)))));
  }

  private ensureChart(): void {
    if (this.chart) return;
    this.chart = createChart(this.chartBox, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: '#10161d' }, textColor: '#9aa7b4', fontSize: 11,
        attributionLogo: false },
      grid: { vertLines: { color: '#1b2530' }, horzLines: { color: '#1b2530' } },
      rightPriceScale: { borderColor: '#263241' },
      timeScale: { borderColor: '#263241', timeVisible: true, secondsVisible: true },
    });
    this.equity = this.chart.addSeries(LineSeries, { color: '#4caf7a', lineWidth: 2, priceLineVisible: false });
  }

  private addPoint(tsNs: number, value: number | null): void {
    if (value === null || !Number.isFinite(value)) return;
    this.ensureChart();
    // lightweight-charts plots UTC: shift to local time as the spread chart does.
    const t = Math.floor(tsNs / 1e9) - new Date().getTimezoneOffset() * 60;
    if (t < this.lastT) return;
    this.equity!.update({ time: t as UTCTimestamp, value });
    if (this.lastT < 0) this.chart!.timeScale().fitContent();
    this.lastT = t;
    this.chartBox.dataset.points = String(Number(this.chartBox.dataset.points ?? 0) + 1);
  }

  private renderPositions(pairs: PaperPair[]): void {
    if (!pairs.length) {
      this.positions.replaceChildren(h('div', { class: 'empty' }, 'No open positions.'));
      return;
    }
    const head = h('thead', {}, h('tr', {}, ...['venue', 'side', 'qty', 'entry', 'mark', 'uPnL', 'liq px', 'liq dist']
      .map((c) => h('th', {}, c))));
    const rows: HTMLElement[] = [];
    for (const p of pairs) {
      rows.push(h('tr', { class: 'pair-row', 'data-testid': 'paper-pair', 'data-asset': p.asset, 'data-legs': p.legs.length },
        h('td', { colspan: 5 }, h('b', {}, p.asset), ' ', h('span', { class: 'dim' }, p.pair),
          p.hedged ? '' : h('span', { class: 'badge warn-text' }, ' unhedged')),
        h('td', { class: 'num' }, money(p.unrealized_pnl)), h('td', {}, ''),
        h('td', { class: 'num' }, pct(p.min_liquidation_distance, 1))));
      for (const l of p.legs) rows.push(legRow(l));
    }
    this.positions.replaceChildren(h('table', { class: 'grid' }, head, h('tbody', {}, ...rows)));
  }

  private renderFills(): void {
    if (!this.fillRows.length) {
      this.fills.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No fills yet.')));
      return;
    }
    this.fills.replaceChildren(...this.fillRows.map((f) => h('tr', { 'data-testid': 'paper-fill', 'data-id': f.id },
      h('td', { class: 'dim' }, clock(f.ts_ns)), h('td', {}, f.venue), h('td', { title: f.symbol }, f.asset),
      h('td', { class: f.side === 'buy' ? 'pos' : 'neg' }, f.side), h('td', { class: 'num' }, qty(f.qty)),
      h('td', { class: 'num' }, num(f.px, f.px < 1 ? 6 : 2)), h('td', { class: 'num' }, `${num(f.fee, 4)} ${f.fee_asset}`),
      h('td', { class: 'dim' }, f.liquidity))));
  }

  private renderRisk(r: PaperRisk): void {
    const k = r.kill_switch;
    setText(this.state, k.killed ? `KILLED: ${k.reason}${k.flattening ? ' (flattening)' : ''}` : 'trading');
    this.state.className = `pill ${k.killed ? 'disconnected' : 'connected'}`;
    this.state.dataset.killed = String(k.killed);
    this.killBtn.disabled = k.killed && !this.flatten.checked;
    this.resumeBtn.disabled = !k.killed;
    this.risk.replaceChildren(...r.utilisation.map((u) => {
      const used = u.used ?? 0;
      const isFrac = u.limit === 'max_drawdown' || u.limit === 'min_liquidation_distance';
      const fmt = (x: number | null) => (isFrac ? pct(x, 1) : money(x));
      return h('div', { class: 'bar', 'data-testid': 'risk-row', 'data-limit': u.limit, 'data-scope': u.scope,
        'data-used': u.used ?? '', title: `${u.limit} (${u.scope}): ${fmt(u.value)} of ${fmt(u.max)}` },
      h('span', { class: 'bar-label' }, `${u.limit.replaceAll('_', ' ')} · ${u.scope}`),
      h('span', { class: 'bar-track' }, h('span', { class: `bar-fill${used >= 1 ? ' over' : used >= 0.8 ? ' near' : ''}`,
        style: `width:${Math.min(100, Math.max(1, used * 100))}%` })),
      h('span', { class: 'num' }, `${fmt(u.value)} / ${fmt(u.max)}`));
    }));
    const rej = Object.entries(r.rejections).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const legs = Object.entries(r.leg_risk.counts);
    setText(this.rejections, `refused: ${rej.length ? rej.map(([why, n]) => `${why.replaceAll('_', ' ')} ${n}`).join(', ') : 'none'}`
      + ` · leg risk: ${legs.length ? legs.map(([a, n]) => `${a} ${n}`).join(', ') : 'none'}`
      + (r.leg_risk.unhedged.length ? ` · ${r.leg_risk.unhedged.length} unhedged now` : ''));
  }

  private async post(path: string, body: Record<string, unknown>): Promise<void> {
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      token = window.prompt('API token (api.token) to operate the kill switch:') ?? '';
      if (!token) return;
    }
    try {
      const res = await fetch(path, { method: 'POST', body: JSON.stringify(body),
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
      const data = (await res.json().catch(() => ({}))) as { detail?: unknown; killed?: boolean };
      if (!res.ok) {
        if (res.status === 401 || res.status === 403) sessionStorage.removeItem(TOKEN_KEY);
        setText(this.msg, `refused (HTTP ${res.status}): ${typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail)}`);
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      setText(this.msg, data.killed ? 'kill switch engaged' : 'trading resumed');
      void this.poll();
    } catch {
      setText(this.msg, 'API unreachable');
    }
  }
}

function legRow(l: PaperLeg): HTMLElement {
  const near = l.liquidation_distance !== null && l.liquidation_distance < 0.1;
  return h('tr', { 'data-testid': 'paper-leg', 'data-venue': l.venue, 'data-asset': l.asset, 'data-side': l.side,
    'data-liq-distance': l.liquidation_distance ?? '' },
  h('td', {}, l.venue), h('td', { class: l.side === 'long' ? 'pos' : 'neg' }, l.side),
  h('td', { class: 'num' }, qty(l.qty)), h('td', { class: 'num' }, num(l.avg_entry_px, l.avg_entry_px < 1 ? 6 : 2)),
  h('td', { class: 'num' }, num(l.mark_px, l.mark_px < 1 ? 6 : 2)), h('td', { class: 'num' }, money(l.unrealized_pnl)),
  h('td', { class: 'num' }, l.liquidation_px === null ? dash : num(l.liquidation_px, l.liquidation_px < 1 ? 6 : 2)),
  h('td', { class: `num${near ? ' warn-text' : ''}` }, pct(l.liquidation_distance, 1)));
}
