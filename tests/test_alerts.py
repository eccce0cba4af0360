"""Alerts delivered through Apprise to a local HTTP receiver; payloads and cooldowns."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from perparb.model import Opportunity
from perparb.scanner.alerts import Alerter, AlertRule

S = 1_000_000_000


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def spread(ts_ns: int, edge: float = 12.0, asset: str = "ETH", buy: str = "binance", sell: str = "okx") -> Opportunity:
    return Opportunity(id=f"spread:{asset}:{buy}:{sell}", kind="spread", asset=asset, buy_venue=buy, sell_venue=sell,
                       buy_symbol=f"{asset}/USDT:USDT", sell_symbol=f"{asset}/USDT:USDT", buy_px=3000.0,
                       sell_px=3004.0, size_base=2.0, notional_quote=6000.0, gross_bps=13.3, edge_bps=edge, ts_ns=ts_ns)


def test_delivers_to_a_webhook_with_cooldown_per_pair(receiver: Receiver) -> None:
    alerter = Alerter([AlertRule(min_edge_bps=10.0)], [f"json://127.0.0.1:{receiver.port}/hook"], cooldown_s=300)
    t = 1_800_000_000 * S
    alerter("open", spread(t))
    alerter("update", spread(t + 60 * S))           # same pair within 5 minutes: cooled down
    alerter("open", spread(t + 61 * S, sell="bybit"))  # another pair: its own cooldown
    alerter("update", spread(t + 301 * S))          # after the cooldown: again
    alerter("open", spread(t + 302 * S, edge=5.0, asset="BTC"))  # below the rule
    alerter.flush()
    alerter.close()
    titles = [b["title"] for b in receiver.bodies]
    assert len(titles) == 3
    assert titles[0].startswith("ETH spread 12.0 bps net: buy binance, sell okx")
    assert "sell bybit" in titles[1] and "sell okx" in titles[2]
    assert "buy 2 ETH on binance at 3000" in receiver.bodies[0]["message"]
    assert alerter.counts["sent"] == 3 and alerter.counts["suppressed_cooldown"] == 1
    assert alerter.counts["delivered"] == 3
    assert [a.ts_ns for a in alerter.recent] == [t, t + 61 * S, t + 301 * S]


def test_rules_filter_by_asset_venue_kind_and_apr() -> None:
    r = AlertRule(kind="funding", min_apr=0.5, assets=["SOL"], venues=["binance", "bybit"])
    base = dict(id="x", kind="funding", asset="SOL", buy_venue="binance", sell_venue="bybit", buy_symbol="",
                sell_symbol="", apr=0.6, ts_ns=0)
    assert r.matches(Opportunity(**base))  # type: ignore[arg-type]
    assert not r.matches(Opportunity(**{**base, "apr": 0.4}))  # type: ignore[arg-type]
    assert not r.matches(Opportunity(**{**base, "asset": "ETH"}))  # type: ignore[arg-type]
    assert not r.matches(Opportunity(**{**base, "sell_venue": "okx"}))  # type: ignore[arg-type]
    assert not r.matches(Opportunity(**{**base, "kind": "spread"}))  # type: ignore[arg-type]


def test_cooldown_state_is_reported(receiver: Receiver) -> None:
    alerter = Alerter([AlertRule()], [], cooldown_s=300)
    alerter("open", spread(1000 * S))
    [c] = alerter.cooldowns(1100 * S)
    assert c["asset"] == "ETH" and c["seconds_left"] == pytest.approx(200.0)
    assert alerter.cooldowns(1400 * S) == []


def test_a_failing_url_is_counted_not_raised() -> None:
    alerter = Alerter([AlertRule()], ["json://127.0.0.1:9/nothing-listens-here"], cooldown_s=0)
    alerter("open", spread(1 * S))
    alerter.flush()
    alerter.close()
    assert alerter.counts["failed"] == 1
