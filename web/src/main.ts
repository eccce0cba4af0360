// perparb dashboard: one WebSocket stream (snapshot + conflated updates) drives every
// panel; REST is polled only for what the stream does not carry (spread history, alerts).
import './style.css';
import { Store } from './store';
import { connectStream } from './ws';
import { h } from './format';
import { OpportunitiesView } from './views/opportunities';
import { FundingView } from './views/funding';
import { VenuesView } from './views/venues';
import { SpreadView } from './views/spread';
import { AlertsView, HeaderView, RejectionsView } from './views/side';
import { PaperView } from './views/paper';
import { DetailView } from './views/detail';

const store = new Store();
const header = new HeaderView(store);
const opps = new OpportunitiesView(store);
const funding = new FundingView(store);
const venues = new VenuesView(store);
const spread = new SpreadView(store);
const rejections = new RejectionsView(store);
const alerts = new AlertsView(store);
const paper = new PaperView();
const detail = new DetailView(store, () => opps.select(null));
opps.onSelect = (id) => detail.open(id);

document.querySelector<HTMLDivElement>('#app')!.replaceChildren(
  header.el,
  h('main', {},
    h('div', { class: 'col-left' }, opps.el, spread.el),
    h('div', { class: 'col-right' }, venues.el, funding.el,
      h('div', { class: 'pair' }, rejections.el, alerts.el), paper.el)),
  detail.el,
);

connectStream({
  onMessage: (msg) => {
    store.apply(msg);
    paper.apply(msg);
  },
  onState: (up, retry) => {
    header.setStream(up, retry);
    store.setConnected(up);
  },
});

// Once a second: alive times, countdowns, and closed rows that have lingered long enough.
window.setInterval(() => {
  opps.render();
  funding.tick();
}, 1000);
