// Per-pair spread chart: pick an asset and two venues; polls /api/spread/{asset}/{a}/{b}
// every second and plots the executable top-of-book gross spread both ways over time.
// History per pair is kept in memory for the page's lifetime, so switching back keeps it.
import {
  ColorType, LineSeries, LineStyle, createChart, type IChartApi, type ISeriesApi, type LineData, type UTCTimestamp,
} from 'lightweight-charts';
import type { Store } from '../store';
import type { SpreadDirection, SpreadResponse, SpreadStats } from '../types';
import { dash, duration, h, num, pct, setText } from '../format';

const POLL_MS = 1000;
const MAX_POINTS = 7200;
const COLORS = { ab: '#4fc3f7', ba: '#ffb74d' };

interface History { ab: LineData[]; ba: LineData[] }

export class SpreadView {
  private asset = h('select', { 'data-testid': 'spread-asset' });
  private venueA = h('select', { 'data-testid': 'spread-venue-a' });
  private venueB = h('select', { 'data-testid': 'spread-venue-b' });
  private legendAB = h('div', { class: 'legend-row', 'data-testid': 'spread-now-ab' });
  private legendBA = h('div', { class: 'legend-row', 'data-testid': 'spread-now-ba' });
  private status = h('div', { class: 'dim small', 'data-testid': 'spread-status' }, 'Pick an asset and two venues.');
  private box = h('div', { class: 'chart', 'data-testid': 'spread-chart' });
  private chart: IChartApi | null = null;
  private ab: ISeriesApi<'Line'> | null = null;
  private ba: ISeriesApi<'Line'> | null = null;
  private histories = new Map<string, History>();
  private key = '';
  private inFlight = false;
  readonly el: HTMLElement;

  constructor(private store: Store) {
    const swap = h('button', { class: 'small-btn', title: 'Swap venues', 'data-testid': 'spread-swap' }, '⇄');
    swap.onclick = () => {
      const a = this.venueA.value;
      this.venueA.value = this.venueB.value;
      this.venueB.value = a;
      this.select();
    };
    for (const s of [this.asset, this.venueA, this.venueB]) s.onchange = () => this.select();
    this.el = h('section', { class: 'panel spread-panel', 'data-testid': 'spread' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Spread'),
        h('div', { class: 'filters' }, this.asset, this.venueA, swap, this.venueB),
        h('span', { class: 'dim small' }, 'executable top-of-book gross spread, bps, both ways')),
      h('div', { class: 'legend' }, this.legendAB, this.legendBA),
      this.box, this.status);
    store.on('funding', () => this.syncOptions());
    store.on('venues', () => this.syncOptions());
    window.setInterval(() => void this.poll(), POLL_MS);
  }

  private syncOptions(): void {
    const assets = this.store.assets();
    const venues = this.store.venueIds();
    fill(this.asset, assets, assets.includes('BTC') ? 'BTC' : assets[0]);
    fill(this.venueA, venues, venues[0]);
    fill(this.venueB, venues, venues.find((v) => v !== this.venueA.value));
    this.select();
  }

  private ensureChart(): void {
    if (this.chart) return;
    this.chart = createChart(this.box, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: '#10161d' }, textColor: '#9aa7b4', fontSize: 11,
        attributionLogo: false },
      grid: { vertLines: { color: '#1b2530' }, horzLines: { color: '#1b2530' } },
      rightPriceScale: { borderColor: '#263241' },
      timeScale: { borderColor: '#263241', timeVisible: true, secondsVisible: true, rightOffset: 1 },
      localization: { priceFormatter: (p: number) => `${p.toFixed(1)} bps` },
      crosshair: { horzLine: { color: '#445566' }, vertLine: { color: '#445566' } },
    });
    this.ab = this.chart.addSeries(LineSeries, { color: COLORS.ab, lineWidth: 2, priceLineVisible: false });
    this.ba = this.chart.addSeries(LineSeries, { color: COLORS.ba, lineWidth: 2, priceLineVisible: false });
    this.ab.createPriceLine({ price: 0, color: '#5c6b7a', lineWidth: 1, lineStyle: LineStyle.Dashed,
      axisLabelVisible: false, title: '' });
  }

  /** The chosen pair changed: show its history (if any) and poll it. */
  private select(): void {
    const [asset, a, b] = [this.asset.value, this.venueA.value, this.venueB.value];
    if (!asset || !a || !b) return;
    const key = `${asset}/${a}/${b}`;
    if (key === this.key) return;
    this.key = key;
    this.ensureChart();
    const hist = this.history(key);
    this.ab!.applyOptions({ title: `${a}→${b}` });
    this.ba!.applyOptions({ title: `${b}→${a}` });
    this.ab!.setData(hist.ab);
    this.ba!.setData(hist.ba);
    this.chart!.timeScale().fitContent();
    setText(this.legendAB, '');
    setText(this.legendBA, '');
    if (a === b) setText(this.status, 'Pick two different venues.');
    this.box.dataset.pair = key;
    void this.poll();
  }

  /** The server keeps a per-second series of pairs asked about recently: start from it. */
  private prefill(hist: History, d: SpreadResponse): void {
    const offset = new Date().getTimezoneOffset() * 60;
    let last = -1;
    for (const p of d.series ?? []) {
      const t = Math.floor(p.ts_ns / 1e9) - offset;
      if (t <= last) continue;
      last = t;
      if (p.a_to_b_gross_bps !== null) hist.ab.push({ time: t as UTCTimestamp, value: p.a_to_b_gross_bps });
      if (p.b_to_a_gross_bps !== null) hist.ba.push({ time: t as UTCTimestamp, value: p.b_to_a_gross_bps });
    }
    this.ab!.setData(hist.ab);
    this.ba!.setData(hist.ba);
  }

  private history(key: string): History {
    let hist = this.histories.get(key);
    if (!hist) this.histories.set(key, (hist = { ab: [], ba: [] }));
    return hist;
  }

  private async poll(): Promise<void> {
    const key = this.key;
    const [asset, a, b] = key.split('/');
    if (!key || a === b || this.inFlight || document.hidden) return;
    this.inFlight = true;
    try {
      const res = await fetch(`/api/spread/${encodeURIComponent(asset)}/${encodeURIComponent(a)}/${encodeURIComponent(b)}`);
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        setText(this.status, `No spread: ${(body as { detail?: string }).detail ?? res.statusText}`);
        return;
      }
      const data = (await res.json()) as SpreadResponse;
      if (key !== this.key) return; // the selection changed while we waited
      this.add(key, data);
    } catch {
      setText(this.status, 'API unreachable; retrying…');
    } finally {
      this.inFlight = false;
    }
  }

  private add(key: string, d: SpreadResponse): void {
    const hist = this.history(key);
    if (hist.ab.length === 0 && hist.ba.length === 0 && d.series?.length) this.prefill(hist, d);
    // Local wall time as the chart's "UTC" axis, so labels read in the viewer's zone.
    const t = (Math.floor(this.store.now() / 1000) - new Date().getTimezoneOffset() * 60) as UTCTimestamp;
    for (const [dir, series, list] of [[d.a_to_b, this.ab!, hist.ab], [d.b_to_a, this.ba!, hist.ba]] as const) {
      if (dir.top_gross_bps === null) continue;
      const point = { time: t, value: dir.top_gross_bps };
      const last = list[list.length - 1];
      if (last && (last.time as number) > t) continue;
      if (last && last.time === t) list[list.length - 1] = point;
      else list.push(point);
      if (list.length > MAX_POINTS) list.splice(0, list.length - MAX_POINTS);
      series.update(point);
    }
    if (hist.ab.length < 120) this.chart!.timeScale().fitContent(); // spread the first points out
    this.box.dataset.points = String(hist.ab.length);
    legend(this.legendAB, COLORS.ab, d.a_to_b, d.history.stats_a_to_b?.hour ?? null);
    legend(this.legendBA, COLORS.ba, d.b_to_a, d.history.stats_b_to_a?.hour ?? null);
    const down = [d.venue_a, d.venue_b].filter((v) => this.store.venues.some((x) => x.venue === v && !x.connected));
    this.status.classList.toggle('warn-text', down.length > 0);
    if (down.length) {
      setText(this.status, `${down.join(' and ')} disconnected: its last quotes are stale, the scanner does not pair them.`);
      return;
    }
    setText(this.status, `Polled every ${POLL_MS / 1000} s; net = after taker fees on both legs and the exit estimate; `
      + 'open share of the time observed in the last hour, and the median net while open, from the server\'s '
      + 'per-minute history.');
  }
}

function legend(el: HTMLElement, color: string, d: SpreadDirection, hour: SpreadStats | null): void {
  const net = d.executable ? `net ${num(d.executable.edge_bps, 1)}` : (d.reason ?? dash);
  // Early in a run the window is what has been observed, so say how long that is.
  const stats = hour && hour.observed_s > 0
    ? ` · open ${pct(hour.open_fraction, 1)} of the last ${duration(hour.observed_s)}`
      + (hour.samples ? `, median net while open ${num(hour.median_open_edge_bps, 1)}` : '') : '';
  el.replaceChildren(h('span', { class: 'swatch', style: `background:${color}` }),
    h('b', {}, `buy ${d.buy_venue} → sell ${d.sell_venue}: `),
    h('span', { class: (d.top_gross_bps ?? 0) > 0 ? 'pos' : 'neg' }, `${num(d.top_gross_bps, 2)} bps gross`),
    h('span', { class: 'dim' }, ` (${net}${stats})`));
}

function fill(sel: HTMLSelectElement, values: string[], fallback: string | undefined): void {
  const have = [...sel.options].map((o) => o.value);
  if (have.join() === values.join()) return;
  const cur = sel.value;
  sel.replaceChildren(...values.map((v) => h('option', { value: v }, v)));
  sel.value = values.includes(cur) ? cur : (fallback ?? '');
}
