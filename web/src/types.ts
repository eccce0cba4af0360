// JSON shapes of the perparb API (src/perparb/api/state.py and hub.py).

export type Kind = 'spread' | 'funding';
export type LifecycleEvent = 'open' | 'update' | 'close';

/** Fields every opportunity carries, spread or funding. */
interface OpportunityBase {
  id: string;
  kind: Kind;
  asset: string;
  buy_venue: string;
  sell_venue: string;
  buy_symbol: string;
  sell_symbol: string;
  buy_px: number; // VWAP of the buy (long) leg at size_base
  sell_px: number; // VWAP of the sell (short) leg
  buy_worst_px: number; // the worst book level each leg reaches at size_base
  sell_worst_px: number;
  size_base: number;
  notional_quote: number;
  gross_bps: number;
  edge_bps: number;
  basis_bps: number; // sell mid against buy mid, bps
  net_profit_quote: number; // expected net profit at size_base, quote currency
  first_seen_ns: number;
  ts_ns: number;
  peak_edge_bps: number;
  close_reason: string;
  alive_s: number;
}

/** A price spread: buy on one venue, sell on the other now. The API omits funding fields. */
export interface SpreadOpportunity extends OpportunityBase {
  kind: 'spread';
  top_size_base: number;
}

/** A funding carry: long where funding is low, short where it is high, to horizon_h. */
export interface FundingOpportunity extends OpportunityBase {
  kind: 'funding';
  long_venue: string;
  short_venue: string;
  apr: number;
  predicted_apr: number | null;
  net_carry_quote: number;
  funding_quote: number;
  horizon_h: number;
  long_rate: number;
  short_rate: number;
  long_predicted_rate: number | null;
  short_predicted_rate: number | null;
  long_interval_h: number;
  short_interval_h: number;
  long_next_funding_ns: number;
  short_next_funding_ns: number;
  long_next_funding_in_s: number | null;
  short_next_funding_in_s: number | null;
  break_even_h: number | null;
}

export type Opportunity = SpreadOpportunity | FundingOpportunity;

export type OpportunityEvent = Opportunity & { event: LifecycleEvent };

export interface VenueStatus {
  venue: string;
  state: string; // connecting | connected | stale | disconnected
  connected: boolean;
  stale?: boolean; // connected, but its newest price data is older than the staleness limit
  data_age_ms?: number | null;
  stale_after_ms?: number;
  reason?: string | null;
  messages: number;
  messages_per_s: number | null;
  last_message_age_ms: number | null;
  reconnects: number;
  decode_errors: number;
  unknown_symbols: number;
  last_error: string;
  books: { total: number; synced: number; resyncing: number; invalid: number };
  book_resyncs: number;
  book_gaps: number;
  checksum_failures: number;
  crossed_books: number;
}

export interface FundingCell {
  symbol: string;
  rate: number;
  predicted_rate: number | null;
  interval_h: number;
  rate_per_hour: number | null;
  apr: number | null;
  next_funding_ns: number;
  mark_px: number | null;
  index_px: number | null;
  age_ms: number;
}

/** asset -> venue -> cell */
export type FundingMatrix = Record<string, Record<string, FundingCell>>;

export interface Summary {
  venues: number;
  venues_connected: number;
  messages: number;
  assets: number;
  instruments: number;
  open_opportunities: Record<string, number>;
  opportunities_opened: Record<string, number>;
  best_spread: Opportunity | null;
  rejections: Record<string, number>;
  engine_time_ns: number;
}

export interface PriceRow {
  venue: string;
  symbol: string;
  bid_px: number | null;
  ask_px: number | null;
  mid_px: number | null;
  age_ms: number | null;
  book: string;
}

export interface Alert {
  ts_ns: number;
  rule: string;
  kind: string;
  asset: string;
  buy_venue: string;
  sell_venue: string;
  title: string;
  body: string;
  opportunity_id: string;
}

export interface AlertsResponse {
  enabled: boolean;
  recent: Alert[];
  cooldowns: { kind: string; asset: string; buy_venue: string; sell_venue: string; seconds_left: number }[];
  counts: Record<string, number>;
  cooldown_s?: number;
}

export interface SpreadDirection {
  buy_venue: string;
  sell_venue: string;
  top_gross_bps: number | null;
  executable: Opportunity | null;
  reason: string | null;
}

/** One window of /api/stats: the share of the time observed (not the whole window, early
 * in a run) that the pair was open, and the median net edge while it was open. */
export interface SpreadStats {
  window_s: number;
  observed_s: number;
  open_s: number;
  open_fraction: number | null;
  median_open_edge_bps: number | null;
  samples: number;
}

export interface SpreadPoint {
  ts_ns: number;
  a_to_b_gross_bps: number | null;
  b_to_a_gross_bps: number | null;
}

export interface SpreadResponse {
  asset: string;
  venue_a: string;
  venue_b: string;
  a_to_b: SpreadDirection;
  b_to_a: SpreadDirection;
  series?: SpreadPoint[];
  history: {
    stats_a_to_b: { hour: SpreadStats; day: SpreadStats } | null;
    stats_b_to_a: { hour: SpreadStats; day: SpreadStats } | null;
  };
}

// GET /api/opportunities/{id}/detail (src/perparb/api/detail.py)
export interface DepthLevel { px: number; qty: number; cum_qty: number; cum_notional_quote: number }
export interface DepthSide { venue: string; symbol: string; side: 'asks' | 'bids'; levels: DepthLevel[]; available_base: number }
export interface CurvePoint {
  size_base: number; notional_quote: number; buy_vwap: number; sell_vwap: number; buy_worst_px: number;
  sell_worst_px: number; gross_bps: number; edge_bps: number; net_profit_quote: number;
}
export interface MinutePoint {
  minute_ns: number; min_edge_bps: number; max_edge_bps: number; median_edge_bps: number;
  median_basis_bps: number | null; samples: number; open_s: number;
}
export interface FundingPoint { ts_ns: number; rate: number; predicted_rate: number | null; interval_h: number; next_funding_ns: number }
export interface FundingLegHistory { venue: string; symbol: string; points: FundingPoint[] }
export interface OpportunityDetail {
  id: string; kind: Kind; asset: string; buy_venue: string; sell_venue: string; now_ns: number;
  open: Opportunity | null; size_base: number; size_source: 'request' | 'opportunity' | 'depth';
  fees: { buy: number; sell: number }; exit_cost_per_unit: number | null;
  depth: { buy: DepthSide; sell: DepthSide };
  slippage: CurvePoint[];
  history: { minutes: MinutePoint[]; hour: SpreadStats | null; day: SpreadStats | null };
  funding: { long: FundingLegHistory; short: FundingLegHistory } | null;
}

export type ServerMessage =
  | {
      type: 'snapshot';
      venues: VenueStatus[];
      prices: Record<string, PriceRow[]>;
      opportunities: Opportunity[];
      funding: FundingMatrix;
      summary: Summary;
      alerts: Alert[];
    }
  | { type: 'price_update'; asset: string; data: PriceRow[] }
  | { type: 'opportunities'; events: OpportunityEvent[] }
  | { type: 'funding'; asset: string; data: Record<string, FundingCell> }
  | { type: 'venue_status'; data: VenueStatus[] }
  | { type: 'summary'; data: Summary }
  | { type: 'alert'; data: Alert }
  | { type: 'error'; error: string }
  | { type: 'fill'; asset: string; data: PaperFill }
  | { type: 'position'; asset: string; key: string; data: PaperLeg }
  | { type: 'pnl'; data: PaperPnl }
  // One tick's messages for this client in one frame (the hub batches when it has several).
  | { type: 'batch'; messages: ServerMessage[] };

// Paper trading (/api/paper/* and the stream's fill, position and pnl messages).
export interface PaperFill {
  id: string; ts_ns: number; venue: string; symbol: string; venue_symbol: string; side: 'buy' | 'sell';
  qty: number; px: number; fee: number; fee_asset: string; liquidity: string; order_id: string; intent_id: string;
  strategy: string; asset: string;
}

export interface PaperLeg {
  ts_ns: number; venue: string; symbol: string; asset: string; side: 'long' | 'short' | 'flat'; qty: number;
  avg_entry_px: number; mark_px: number; unrealized_pnl: number; realized_pnl: number;
  liquidation_px: number | null; liquidation_distance: number | null; notional: number; settle: string;
}

export interface PaperPair {
  asset: string; pair: string; venues: string[]; net_qty: number; hedged: boolean; notional: number;
  unrealized_pnl: number; min_liquidation_distance: number | null; legs: PaperLeg[];
}

export interface PaperPnl {
  ts_ns: number | null; equity: number | null; spread_pnl: number; realized_pnl: number; unrealized_pnl: number;
  funding_pnl: number; fees: number; collateral: number | null;
}

export interface PaperRisk {
  kill_switch: { killed: boolean; reason: string; since_ns: number | null; flattening: boolean };
  utilisation: { limit: string; scope: string; value: number | null; max: number; used: number | null }[];
  rejections: Record<string, number>;
  leg_risk: { counts: Record<string, number>; unhedged: unknown[] };
}
