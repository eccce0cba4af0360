// Venue health: connection state, message rate, last message age, books, resyncs,
// reconnects and decode errors, one row per venue.
import type { Store } from '../store';
import { ageMs, dash, h, num, redact, setText } from '../format';

const COLS = ['venue', 'state', 'rate', 'age', 'books', 'resyncs', 'reconnects', 'errors'] as const;

export class VenuesView {
  private tbody = h('tbody');
  private note = h('div', { class: 'note warn', hidden: true, 'data-testid': 'venues-stale' },
    'Dashboard stream disconnected: venue data below is stale.');
  readonly el: HTMLElement;

  constructor(private store: Store) {
    const head = h('tr', {},
      h('th', {}, 'Venue'), h('th', {}, 'State'), h('th', { class: 'num', title: 'Messages per second' }, 'Msg/s'),
      h('th', { class: 'num', title: 'Time since the last message from the venue' }, 'Last'),
      h('th', { class: 'num', title: 'Order books synced / total' }, 'Books'),
      h('th', { class: 'num', title: 'Book resyncs (gaps: sequence breaks)' }, 'Resync'),
      h('th', { class: 'num', title: 'Reconnects' }, 'Recon'),
      h('th', { class: 'num', title: 'Decode errors (+ unknown symbols)' }, 'Errors'));
    this.el = h('section', { class: 'panel venues-panel', 'data-testid': 'venues' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Venues')),
      this.note,
      h('table', { class: 'grid venues', 'data-testid': 'venue-table' }, h('thead', {}, head), this.tbody));
    store.on('venues', () => this.render());
    store.on('connection', () => this.render());
  }

  render(): void {
    const s = this.store;
    this.note.hidden = s.connected || s.venues.length === 0;
    this.el.classList.toggle('stale', !s.connected);
    const have = [...this.tbody.rows].map((r) => r.dataset.venue).join();
    if (have !== s.venues.map((v) => v.venue).join()) {
      this.tbody.replaceChildren(...s.venues.map((v) => h('tr', { 'data-testid': `venue-row-${v.venue}`, 'data-venue': v.venue },
        ...COLS.map((c) => h('td', { 'data-col': c, class: c === 'venue' || c === 'state' ? '' : 'num' })))));
    }
    for (const v of s.venues) {
      const tr = this.tbody.querySelector<HTMLTableRowElement>(`tr[data-venue="${v.venue}"]`)!;
      const td = (c: string): HTMLElement => tr.querySelector(`[data-col="${c}"]`)!;
      const state = v.stale ? 'stale' : v.connected ? 'connected' : v.state || 'disconnected';
      tr.dataset.state = state;
      tr.className = `state-${state}`;
      setText(td('venue'), v.venue);
      const pill = td('state');
      if (!pill.firstElementChild) pill.append(h('span', { class: 'pill', 'data-testid': `venue-state-${v.venue}` }));
      const p = pill.firstElementChild as HTMLElement;
      setText(p, state);
      p.className = `pill ${state}`;
      p.dataset.state = state;
      setText(td('rate'), v.messages_per_s === null ? dash : num(v.messages_per_s, 1));
      const age = td('age');
      setText(age, ageMs(v.last_message_age_ms));
      age.classList.toggle('warn-text', (v.last_message_age_ms ?? 0) > 5000);
      setText(td('books'), `${v.books.synced}/${v.books.total}`);
      td('books').classList.toggle('warn-text', v.books.synced < v.books.total);
      setText(td('resyncs'), v.book_gaps ? `${v.book_resyncs} (${v.book_gaps} gaps)` : String(v.book_resyncs));
      setText(td('reconnects'), String(v.reconnects));
      const errs = v.decode_errors + v.unknown_symbols;
      setText(td('errors'), v.unknown_symbols ? `${v.decode_errors} (+${v.unknown_symbols})` : String(v.decode_errors));
      td('errors').classList.toggle('warn-text', errs > 0);
      tr.title = v.last_error ? `last error: ${redact(v.last_error)}` : `${v.messages.toLocaleString()} messages`;
    }
  }
}
