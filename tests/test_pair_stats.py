"""Rolling pair statistics (/api/stats and the spread chart's history) over short runs:
the open share divides by the time actually observed, and the median is of the net edge
while the pair was open. The expected values are worked out here from the quotes."""

from __future__ import annotations

import statistics

import pytest
from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.model import Instrument, Quote, VenueStatus
from perparb.scanner.core import Scanner, ScanSettings

S = 1_000_000_000
MINUTE = 60 * S
T0 = 28_333_333 * MINUTE + 10 * S  # 10 s into a minute
FEE = 0.0005
A = Instrument(venue="aaa", venue_symbol="BTCUSDT", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
               settle="USDT", taker_fee=FEE)
B = Instrument(venue="bbb", venue_symbol="BTCUSDT", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
               settle="USDT", taker_fee=FEE)
STATUS = {v: VenueStatus(venue=v, connected=True) for v in ("aaa", "bbb")}
A_BID, A_ASK = 99.9, 100.0


def edge_bps(b_bid: float, b_ask: float) -> float:
    """Buy one unit at aaa's ask, sell at bbb's bid, net of taker fees and the exit estimate
    (half of each spread plus exit fees)."""
    exit_unit = 0.5 * ((A_ASK - A_BID) + (b_ask - b_bid)) + FEE * A_BID + FEE * b_ask
    return (b_bid * (1 - FEE) - A_ASK * (1 + FEE) - exit_unit) / A_ASK * 1e4


class Run:
    def __init__(self) -> None:
        self.engine = Engine(Registry(), [], Scanner(ScanSettings(min_edge_bps=1.0, max_quote_age_ms=3_600_000.0)))
        self.sc = self.engine.scanner

    def quote(self, inst: Instrument, t_s: float, bid: float, ask: float) -> None:
        t = T0 + int(t_s * S)
        self.engine.advance(t)
        self.sc.on_quote(inst, Quote(inst.venue, inst.symbol, inst.venue_symbol, bid, 1.0, ask, 1.0, t, t), t,
                         STATUS)

    def api(self, path: str) -> object:
        with TestClient(create_app(ApiContext(self.engine, ApiSettings()))) as c:
            r = c.get(path)
            assert r.status_code == 200, r.text
            return r.json()


def test_a_short_run_divides_by_the_time_observed() -> None:
    r = Run()
    r.quote(A, 0, A_BID, A_ASK)
    r.quote(B, 0, 100.0, 100.1)  # no gap: observed, not open
    r.quote(B, 3, 101.0, 101.1)  # opens: first sample
    r.quote(B, 9, 101.2, 101.3)  # 6 s after the last sample: sampled
    r.quote(B, 10, 100.0, 100.1)  # closes after 7 s open
    r.quote(B, 14, 101.5, 101.6)  # opens again; 5 s after the last sample: sampled
    r.quote(B, 16, 101.4, 101.5)  # within 5 s of a sample: not sampled
    r.engine.advance(T0 + 20 * S)  # still open: 6 s of this episode so far
    [row] = r.api("/api/stats?asset=BTC")  # type: ignore[misc]
    assert (row["id"], row["open_now"]) == ("spread:BTC:aaa:bbb", True)
    want_median = statistics.median([edge_bps(101.0, 101.1), edge_bps(101.2, 101.3), edge_bps(101.5, 101.6)])
    for window, seconds in (("hour", 3600), ("day", 86400)):
        got = row[window]
        assert got["window_s"] == seconds
        assert got["observed_s"] == pytest.approx(20.0)  # the run so far, not the whole window
        assert got["open_s"] == pytest.approx(7.0 + 6.0)
        assert got["open_fraction"] == pytest.approx(13.0 / 20.0)
        assert got["samples"] == 3
        assert got["median_open_edge_bps"] == pytest.approx(want_median, rel=1e-9)
    # The spread chart reads the same numbers.
    spread = r.api("/api/spread/BTC/aaa/bbb")
    assert spread["history"]["stats_a_to_b"] == {"hour": row["hour"], "day": row["day"]}  # type: ignore[index]
    assert spread["history"]["stats_b_to_a"] is None  # type: ignore[index]


def test_a_pair_open_the_whole_time_is_open_all_of_its_windows() -> None:
    # Two hours, open throughout. The hour window is the last 59 whole minutes plus the 10 s
    # of the current one, the day window the two hours observed: open 100 % of both.
    r = Run()
    r.quote(A, 0, A_BID, A_ASK)
    for k in range(241):
        r.quote(B, 30 * k, 101.0, 101.1)
        r.quote(A, 30 * k, A_BID, A_ASK)
    hour, day = (r.api("/api/stats")[0][w] for w in ("hour", "day"))  # type: ignore[index]
    assert hour["observed_s"] == pytest.approx(59 * 60 + 10) and hour["open_s"] == pytest.approx(59 * 60 + 10)
    assert day["observed_s"] == pytest.approx(7200.0) and day["open_s"] == pytest.approx(7200.0)
    assert hour["open_fraction"] == pytest.approx(1.0) and day["open_fraction"] == pytest.approx(1.0)
    assert hour["median_open_edge_bps"] == pytest.approx(edge_bps(101.0, 101.1), rel=1e-9)
    # One sample per 5 s at most: every 30 s quote is sampled; the hour holds the ones in its window.
    assert day["samples"] == 241 and hour["samples"] == len([k for k in range(241) if 30 * k >= 7200 - 59 * 60 - 10])
