"""/api/paper/* and the WebSocket's fill, position and pnl messages, over a hand-built market:
one pair (buy 0.1 BTC on binance, sell 0.1 on okx) whose fills, fees, marks, PnL split and
liquidation prices are worked out here from the books and the formulas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.paper_helpers import MS, T0, Market, inst

from perparb.api.app import ApiContext, create_app
from perparb.bus import TRADE_ORDERS
from perparb.bus.messages import Leg, TradeIntent
from perparb.config import ApiSettings, Settings
from perparb.paper import build_trading
from perparb.trading_settings import PaperSettings

TAKER = 0.0005
COLLATERAL = 2_000.0  # USDT in each venue account
MMR = 0.05  # paper.margin.maintenance's default


def _setup() -> tuple[Market, Any, Any, Any]:
    bn, ok = inst("binance", "BTCUSDT", lot_size=0.001), inst("okx", "BTC-USDT-SWAP", lot_size=0.0001)
    m = Market(bn, ok)
    m.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 2.0)], T0)
    m.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0)
    settings = Settings(strategies=[], paper=PaperSettings(collateral={"USDT": COLLATERAL}))
    trading = build_trading(settings, m.engine, venues=["binance", "okx"])
    trading.start()  # deposits paper.collateral in each venue account
    return m, bn, ok, trading


def _trade(m: Market, bn: Any, ok: Any, trading: Any) -> None:
    trading.bus.publish(TRADE_ORDERS, TradeIntent(
        id="t-1", ts_ns=T0, strategy="s", action="open", asset="BTC",
        legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.1),
              Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.1)]))
    m.advance(T0 + 50 * MS)  # both legs arrive after the default 50 ms and fill


def test_paper_endpoints_show_the_pair_its_pnl_split_and_liquidation() -> None:
    m, bn, ok, trading = _setup()
    app = create_app(ApiContext(m.engine, ApiSettings(token="s3cret"), trading=trading))
    with TestClient(app) as c:
        _trade(m, bn, ok, trading)
        fee_bn, fee_ok = 0.1 * 60_010 * TAKER, 0.1 * 60_050 * TAKER

        fills = c.get("/api/paper/fills").json()
        assert [(f["venue"], f["side"], f["qty"], f["px"]) for f in reversed(fills)] == [
            ("binance", "buy", pytest.approx(0.1), 60_010.0), ("okx", "sell", pytest.approx(0.1), 60_050.0)]
        assert [f["fee"] for f in reversed(fills)] == [pytest.approx(fee_bn), pytest.approx(fee_ok)]
        assert all(f["fee_asset"] == "USDT" and f["liquidity"] == "taker" for f in fills)
        assert c.get("/api/paper/fills", params={"venue": "okx"}).json()[0]["venue"] == "okx"
        assert len(c.get("/api/paper/fills", params={"limit": 1}).json()) == 1

        orders = c.get("/api/paper/orders").json()
        assert sorted((o["venue"], o["side"], o["status"]) for o in orders) == [
            ("binance", "buy", "filled"), ("okx", "sell", "filled")]
        assert c.get("/api/paper/orders", params={"status": "open"}).json() == []

        body = c.get("/api/paper/positions").json()
        (pair,) = body["pairs"]
        assert pair["asset"] == "BTC" and pair["hedged"] and pair["net_qty"] == pytest.approx(0.0)
        long, short = pair["legs"]
        assert (long["venue"], long["side"], short["venue"], short["side"]) == ("binance", "long", "okx", "short")
        mark_bn, mark_ok = (59_990 + 60_010) / 2, (60_050 + 60_070) / 2  # no mark price published: the mid
        assert long["mark_px"] == mark_bn and short["mark_px"] == mark_ok
        assert long["unrealized_pnl"] == pytest.approx(0.1 * (mark_bn - 60_010))
        assert short["unrealized_pnl"] == pytest.approx(-0.1 * (mark_ok - 60_050))
        # Cross margin, one position per account: W = collateral - fee paid.
        w_bn, w_ok = COLLATERAL - fee_bn, COLLATERAL - fee_ok
        liq_long = (0.1 * 60_010 - w_bn) / (0.1 * (1 - MMR))
        liq_short = (0.1 * 60_050 + w_ok) / (0.1 * (1 + MMR))
        assert long["liquidation_px"] == pytest.approx(liq_long, rel=1e-12)
        assert short["liquidation_px"] == pytest.approx(liq_short, rel=1e-12)
        assert long["liquidation_distance"] == pytest.approx((mark_bn - liq_long) / mark_bn, rel=1e-12)
        assert short["liquidation_distance"] == pytest.approx((liq_short - mark_ok) / mark_ok, rel=1e-12)
        assert pair["min_liquidation_distance"] == pytest.approx(min(long["liquidation_distance"],
                                                                     short["liquidation_distance"]))

        pnl = c.get("/api/paper/pnl").json()
        spread = 0.1 * (mark_bn - 60_010) - 0.1 * (mark_ok - 60_050)
        assert pnl["spread_pnl"] == pytest.approx(spread)
        assert pnl["fees"] == pytest.approx(fee_bn + fee_ok)
        assert pnl["funding_pnl"] == 0.0
        assert pnl["equity"] == pytest.approx(2 * COLLATERAL + spread - fee_bn - fee_ok)
        assert pnl["net_pnl"] == pytest.approx(spread - fee_bn - fee_ok)
        assert pnl["curve"] and pnl["curve"][-1]["equity"] == pytest.approx(pnl["equity"])

        risk = c.get("/api/paper/risk").json()
        assert risk["kill_switch"]["killed"] is False
        gross = next(u for u in risk["utilisation"] if u["limit"] == "max_gross_notional")
        # the risk engine values legs at their mids: 0.1 * 60,000 + 0.1 * 60,060
        assert gross["value"] == pytest.approx(0.1 * mark_bn + 0.1 * mark_ok)
        assert gross["used"] == pytest.approx(gross["value"] / risk["limits"]["max_gross_notional"])
        liq = next(u for u in risk["utilisation"] if u["limit"] == "min_liquidation_distance")
        assert liq["value"] == pytest.approx(min(long["liquidation_distance"], short["liquidation_distance"]))
        assert risk["rejections"]["killed"] == 0

        # A kill refuses the next intent; the refusal is counted by reason.
        hdr = {"Authorization": "Bearer s3cret"}
        assert c.post("/api/paper/kill", headers=hdr, json={"flatten": False, "reason": "desk"}).json()["killed"]
        trading.bus.publish(TRADE_ORDERS, TradeIntent(
            id="t-2", ts_ns=T0 + 60 * MS, strategy="s", action="open", asset="BTC",
            legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.1),
                  Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.1)]))
        risk = c.get("/api/paper/risk").json()
        assert risk["kill_switch"] == {**risk["kill_switch"], "killed": True, "reason": "desk"}
        assert risk["rejections"]["killed"] == 1
        assert risk["kill_events"][0]["engaged"] and risk["kill_events"][0]["reason"] == "desk"
        assert not c.post("/api/paper/resume", headers=hdr).json()["killed"]


def test_paper_endpoints_refuse_bad_parameters_and_say_when_paper_trading_is_off() -> None:
    m, _, _, trading = _setup()
    with TestClient(create_app(ApiContext(m.engine, ApiSettings(token="t"), trading=trading))) as c:
        r = c.get("/api/paper/fills", params={"limit": "lots"})
        assert r.status_code == 422 and "limit" in r.text
        r = c.get("/api/paper/orders", params={"status": "pending"})
        assert r.status_code == 422 and "status" in r.text
        r = c.post("/api/paper/kill", headers={"Authorization": "Bearer t"}, json={"reason": 5, "flatten": True})
        assert r.status_code == 422 and "reason" in r.text
        r = c.post("/api/paper/kill", headers={"Authorization": "Bearer t"}, json={"flaten": True})
        assert r.status_code == 422 and "flaten" in r.text
        assert c.post("/api/paper/kill", json={}).status_code == 401
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/api/paper/positions", "/api/paper/orders", "/api/paper/fills", "/api/paper/pnl",
                "/api/paper/risk", "/api/paper/kill", "/api/paper/resume"} <= set(paths)
    with TestClient(create_app(ApiContext(m.engine, ApiSettings(token="t")))) as c:
        for path in ("positions", "orders", "fills", "pnl", "risk"):
            r = c.get(f"/api/paper/{path}")
            assert r.status_code == 409 and "paper trading is not running" in r.json()["detail"], path


def test_websocket_streams_fills_positions_and_pnl() -> None:
    m, bn, ok, trading = _setup()
    ctx = ApiContext(m.engine, ApiSettings(), trading=trading)
    with TestClient(create_app(ctx)) as c, c.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        ws.send_json({"type": "subscribe", "types": ["fill", "position", "pnl"]})
        assert ws.receive_json()["type"] == "snapshot"
        _trade(m, bn, ok, trading)
        ctx.hub.publish()
        frame = ws.receive_json()
        msgs: list[dict[str, Any]] = frame["messages"] if frame["type"] == "batch" else [frame]
        by_type: dict[str, list[dict[str, Any]]] = {}
        for msg in msgs:
            by_type.setdefault(msg["type"], []).append(msg)
        assert set(by_type) == {"fill", "position", "pnl"}
        assert sorted((f["data"]["venue"], f["data"]["side"], f["data"]["px"]) for f in by_type["fill"]) == [
            ("binance", "buy", 60_010.0), ("okx", "sell", 60_050.0)]
        assert all(f["asset"] == "BTC" for f in by_type["fill"])
        # positions are conflated per contract: one message each, the latest state
        pos = {p["key"]: p["data"] for p in by_type["position"]}
        assert set(pos) == {f"binance:{bn.symbol}", f"okx:{ok.symbol}"}
        assert pos[f"binance:{bn.symbol}"]["qty"] == pytest.approx(0.1)
        assert pos[f"okx:{ok.symbol}"]["qty"] == pytest.approx(-0.1)
        (pnl,) = by_type["pnl"]
        assert pnl["data"]["fees"] == pytest.approx(0.1 * 60_010 * TAKER + 0.1 * 60_050 * TAKER)
        ws.send_json({"type": "subscribe", "types": ["fills"]})
        err = ws.receive_json()
        assert err["type"] == "error" and "fill" in json.dumps(err)


def test_risk_endpoint_shows_a_leg_risk_event_and_the_venue_refusal() -> None:
    bn = inst("binance", "BTCUSDT", lot_size=0.001)
    # okx refuses anything under 100,000 of notional: the short leg is rejected on arrival
    ok = inst("okx", "BTC-USDT-SWAP", contract_size=0.01, lot_size=1.0, min_notional=100_000.0)
    m = Market(bn, ok)
    m.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 2.0)], T0)
    m.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0)
    trading = build_trading(Settings(strategies=[]), m.engine, venues=["binance", "okx"])
    trading.start()
    with TestClient(create_app(ApiContext(m.engine, ApiSettings(), trading=trading))) as c:
        trading.bus.publish(TRADE_ORDERS, TradeIntent(
            id="t-1", ts_ns=T0, strategy="s", action="open", asset="BTC",
            legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.5),
                  Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.5)]))
        m.advance(T0 + 50 * MS)  # binance fills, okx refuses; the unwind goes out
        m.advance(T0 + 100 * MS)  # and fills
        risk = c.get("/api/paper/risk").json()
        (ev,) = risk["leg_risk"]["recent"]
        assert (ev["venue"], ev["action"], ev["intent_id"]) == ("binance", "unwind", "t-1")
        assert ev["unhedged_qty"] == pytest.approx(0.5)
        assert risk["leg_risk"]["counts"] == {"unwind": 1}
        assert risk["rejections"]["execution_min_notional"] == 1
        orders = c.get("/api/paper/orders").json()
        assert [o["status"] for o in orders if o["venue"] == "okx"] == ["rejected"]
        assert "min_notional" in next(o["reason"] for o in orders if o["venue"] == "okx")
        # the unwind left nothing open: no pair to show
        assert c.get("/api/paper/positions").json()["pairs"] == []
