"""Binance USDⓈ-M's signed trading endpoints, on the simulator's Binance server.

What a live adapter needs to place, read and cancel orders and to read positions and
balances, with Binance's own checks in Binance's order: the ``X-MBX-APIKEY`` header
(-2014 missing, -2015 unknown), mandatory parameters (-1102), ``timestamp`` within
``recvWindow`` of the server clock (-1021), and the HMAC-SHA256 ``signature`` of the
query string followed by the body, keyed with the account's secret (-1022).

Orders fill against the simulator's own book for the symbol at the moment they arrive
(market and limit, walking levels; the book itself is not consumed, so the market data
the feeds see stays the model's). A limit order's remainder rests; resting orders fill
at their price, as maker, once the book trades through them, checked whenever the
account is asked about. Positions (one-way mode), wallet balance, realized PnL and fees
are tracked per account, exactly (Decimal).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from perparb.model import Instrument

if TYPE_CHECKING:
    from perparb.sim.server import SimVenue

ZERO = Decimal(0)
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
AHEAD_TOLERANCE_MS = 1_000


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _missing(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _d(x: float | str) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def _s(x: Decimal) -> str:
    s = format(x, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


@dataclass
class SimOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    tif: str  # GTC | IOC | GTX
    qty: Decimal
    price: Decimal
    reduce_only: bool
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_ms: int = 0

    def json(self) -> dict[str, Any]:
        avg = self.cum_quote / self.executed if self.executed else ZERO
        return {
            "orderId": self.order_id, "symbol": self.symbol, "status": self.status, "clientOrderId": self.client_id,
            "price": _s(self.price), "avgPrice": _s(avg), "origQty": _s(self.qty), "executedQty": _s(self.executed),
            "cumQty": _s(self.executed), "cumQuote": _s(self.cum_quote), "timeInForce": self.tif, "type": self.type,
            "reduceOnly": self.reduce_only, "closePosition": False, "side": self.side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": self.type,
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
            "time": self.time_ms, "updateTime": self.update_ms or self.time_ms,
        }


@dataclass
class Position:
    amt: Decimal = ZERO  # signed, native contracts
    entry: Decimal = ZERO
    update_ms: int = 0


@dataclass
class Account:
    secret: str
    asset: str = "USDT"
    wallet: Decimal = Decimal(10_000)
    leverage: int = 20
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    update_ms: int = 0


class BinanceOrders:
    """The signed ``/fapi`` endpoints of one simulated Binance server."""

    def __init__(self, sv: SimVenue, clock: Callable[[], float] = time.time) -> None:
        self.sv = sv
        self.clock = clock
        self.accounts: dict[str, Account] = {}
        self._next_id = 1_000_000

    def add_account(self, api_key: str, secret: str, balance: float = 10_000.0, leverage: int = 20) -> Account:
        acct = Account(secret=secret, wallet=_d(balance), leverage=leverage)
        self.accounts[api_key] = acct
        return acct

    def attach(self, app: web.Application) -> None:
        r = app.router
        r.add_route("POST", "/fapi/v1/order", self._wrap(self._new_order))
        r.add_route("DELETE", "/fapi/v1/order", self._wrap(self._cancel_order))
        r.add_route("GET", "/fapi/v1/order", self._wrap(self._query_order))
        r.add_route("GET", "/fapi/v1/openOrders", self._wrap(self._open_orders))
        r.add_route("GET", "/fapi/v1/leverageBracket", self._wrap(self._leverage_bracket))
        for v in ("v2", "v3"):
            r.add_route("GET", f"/fapi/{v}/positionRisk", self._wrap(self._position_risk))
            r.add_route("GET", f"/fapi/{v}/balance", self._wrap(self._balance))
            r.add_route("GET", f"/fapi/{v}/account", self._wrap(self._account))

    # -- request checks --------------------------------------------------------------------
    def _wrap(self, handler: Callable[[Account, dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.Response:
            if self.sv.rest_down:  # maintenance: the trading API is down with the rest
                return web.json_response({"error": "service unavailable"}, status=503)
            try:
                acct, params = await self._authenticate(request)
                return web.json_response(handler(acct, params))
            except BinanceError as exc:
                return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)
        return run

    async def _authenticate(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        acct = self.accounts.get(key)
        if acct is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query = request.query_string
        body = await request.text() if request.can_read_body else ""
        params: dict[str, str] = {}
        signature = ""
        signed = []
        for part in (query, body):
            kept = []
            for piece in part.split("&") if part else []:
                if piece.startswith("signature="):
                    signature = piece[len("signature="):]
                else:
                    kept.append(piece)
            signed.append("&".join(kept))
            params.update(parse_qsl(part, keep_blank_values=True))
        params.pop("signature", None)
        if not signature:
            raise _missing("signature")
        ts = params.get("timestamp", "")
        if not ts.isdigit():
            raise _missing("timestamp")
        window = params.get("recvWindow", str(DEFAULT_RECV_WINDOW_MS))
        if not window.isdigit() or int(window) > MAX_RECV_WINDOW_MS:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now_ms = int(self.clock() * 1000)
        if int(ts) > now_ms + AHEAD_TOLERANCE_MS:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now_ms - int(ts) > int(window):
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        # Binance signs the query string followed by the body ("totalParams").
        expected = hmac.new(acct.secret.encode(), "".join(signed).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        self._sweep(acct, now_ms)
        return acct, params

    # -- trading ---------------------------------------------------------------------------
    def _inst(self, params: dict[str, str]) -> Instrument:
        sym = params.get("symbol", "")
        if not sym:
            raise _missing("symbol")
        book = self.sv.books.get(sym)
        if book is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return book.inst

    def _new_order(self, acct: Account, p: dict[str, str]) -> dict[str, Any]:
        inst = self._inst(p)
        side = p.get("side", "")
        if not side:
            raise _missing("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        otype = p.get("type", "")
        if not otype:
            raise _missing("type")
        if otype not in ("MARKET", "LIMIT"):
            raise BinanceError(-1116, "Invalid orderType.")
        if not p.get("quantity"):
            raise _missing("quantity")
        try:
            qty = Decimal(p["quantity"])
        except ArithmeticError:
            raise _missing("quantity") from None
        if qty <= 0:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")
        lot = _d(inst.lot_size)
        if lot and qty % lot:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        if inst.min_qty and qty < _d(inst.min_qty):
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        price = ZERO
        tif = "GTC"
        if otype == "LIMIT":
            if not p.get("price"):
                raise _missing("price")
            if not p.get("timeInForce"):
                raise _missing("timeInForce")
            tif = p["timeInForce"]
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise BinanceError(-1115, "Invalid timeInForce.")
            try:
                price = Decimal(p["price"])
            except ArithmeticError:
                raise _missing("price") from None
            if price <= 0:
                raise BinanceError(-4001, "Price less than 0.")
            tick = _d(inst.tick_size)
            if tick and price % tick:
                raise BinanceError(-4014, "Price not increased by tick size.")
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        bids, asks = self.sv.books[inst.venue_symbol].levels()
        levels = asks if side == "BUY" else bids
        ref = _d(levels[0][0]) if levels else price
        est_px = price if otype == "LIMIT" else ref
        pos = acct.positions.setdefault(inst.venue_symbol, Position())
        signed = qty if side == "BUY" else -qty
        if reduce_only and (pos.amt == 0 or (pos.amt > 0) == (signed > 0) or qty > abs(pos.amt)):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        if not reduce_only and inst.min_notional and qty * est_px < _d(inst.min_notional):
            raise BinanceError(-4164, f"Order's notional must be no smaller than {_s(_d(inst.min_notional))} "
                                      "(unless you choose reduce only).")
        if tif == "GTX" and levels and (price >= ref if side == "BUY" else price <= ref):
            raise BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                      "rejected. The order will not be recorded in the order's history")
        opening = max(ZERO, abs(pos.amt + signed) - abs(pos.amt)) if not reduce_only else ZERO
        if opening * est_px / acct.leverage > self._available(acct):
            raise BinanceError(-2019, "Margin is insufficient.")
        client_id = p.get("newClientOrderId") or f"sim{self._next_id}"
        if any(o.client_id == client_id and o.status in ("NEW", "PARTIALLY_FILLED") for o in acct.orders.values()):
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        now_ms = int(self.clock() * 1000)
        self._next_id += 1
        if tif == "FOK" and sum((_d(q) for px_, q in levels if (_d(px_) <= price if side == "BUY"
                                                                else _d(px_) >= price)), ZERO) < qty:
            levels = []  # a fill-or-kill that cannot fill whole does not fill at all
        order = SimOrder(self._next_id, client_id, inst.venue_symbol, side, otype, tif, qty, price, reduce_only,
                         now_ms)
        acct.orders[order.order_id] = order
        for lv_px, lv_qty in levels:
            left = order.qty - order.executed
            px = _d(lv_px)
            if left <= 0 or (otype == "LIMIT" and (px > price if side == "BUY" else px < price)):
                break
            self._fill(acct, inst, order, min(left, _d(lv_qty)), px, inst.taker_fee, now_ms)
        if order.executed == order.qty:
            order.status = "FILLED"
        elif otype == "MARKET" or tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        elif order.executed:
            order.status = "PARTIALLY_FILLED"
        return order.json()

    def _fill(self, acct: Account, inst: Instrument, order: SimOrder, qty: Decimal, px: Decimal, fee_rate: float,
              now_ms: int) -> None:
        order.executed += qty
        order.cum_quote += qty * px
        order.update_ms = now_ms
        notional = qty * px * _d(inst.contract_size)
        acct.wallet -= notional * _d(fee_rate)
        pos = acct.positions.setdefault(order.symbol, Position())
        signed = qty if order.side == "BUY" else -qty
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            total = abs(pos.amt) + qty
            pos.entry = (abs(pos.amt) * pos.entry + qty * px) / total
            pos.amt += signed
        else:
            closed = min(qty, abs(pos.amt))
            direction = 1 if pos.amt > 0 else -1
            acct.wallet += closed * (px - pos.entry) * direction * _d(inst.contract_size)
            pos.amt += signed
            if pos.amt == 0:
                pos.entry = ZERO
            elif (pos.amt > 0) == (signed > 0):  # flipped through zero: the rest opened at px
                pos.entry = px
        pos.update_ms = acct.update_ms = now_ms

    def _sweep(self, acct: Account, now_ms: int) -> None:
        """Resting limit orders the book has traded through fill at their price, as maker."""
        for order in acct.orders.values():
            if order.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            book = self.sv.books.get(order.symbol)
            if book is None or not book.bids or not book.asks:
                continue
            (bid, _), (ask, _) = book.top()
            if (order.side == "BUY" and _d(ask) <= order.price) or (order.side == "SELL" and _d(bid) >= order.price):
                self._fill(acct, book.inst, order, order.qty - order.executed, order.price, book.inst.maker_fee,
                           now_ms)
                order.status = "FILLED"

    def _find(self, acct: Account, p: dict[str, str], unknown: BinanceError) -> SimOrder:
        sym = self._inst(p).venue_symbol
        oid, cid = p.get("orderId", ""), p.get("origClientOrderId", "")
        if not oid and not cid:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                                      "empty/null!")
        for order in acct.orders.values():
            if order.symbol == sym and ((oid and str(order.order_id) == oid) or (cid and order.client_id == cid)):
                return order
        raise unknown

    def _cancel_order(self, acct: Account, p: dict[str, str]) -> dict[str, Any]:
        order = self._find(acct, p, BinanceError(-2011, "Unknown order sent."))
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = int(self.clock() * 1000)
        return order.json()

    def _query_order(self, acct: Account, p: dict[str, str]) -> dict[str, Any]:
        return self._find(acct, p, BinanceError(-2013, "Order does not exist.")).json()

    def _open_orders(self, acct: Account, p: dict[str, str]) -> list[dict[str, Any]]:
        sym = self._inst(p).venue_symbol if p.get("symbol") else None
        return [o.json() for o in acct.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and (sym is None or o.symbol == sym)]

    # -- account ---------------------------------------------------------------------------
    def _mark(self, sym: str) -> Decimal:
        book = self.sv.books[sym]
        mid = self.sv.model.venue_mid(self.sv.venue.id, book.inst.asset)
        return _d(float(f"{book.inst.native_px(mid):.10g}"))

    def _position_rows(self, acct: Account, only: str | None = None) -> list[dict[str, Any]]:
        rows = []
        for sym, pos in acct.positions.items():
            if pos.amt == 0 or (only and sym != only):
                continue
            mark = self._mark(sym)
            cs = _d(self.sv.books[sym].inst.contract_size)
            notional = pos.amt * mark * cs
            margin = abs(notional) / acct.leverage
            rows.append({
                "symbol": sym, "positionSide": "BOTH", "positionAmt": _s(pos.amt), "entryPrice": _s(pos.entry),
                "breakEvenPrice": _s(pos.entry), "markPrice": _s(mark),
                "unRealizedProfit": _s((mark - pos.entry) * pos.amt * cs), "liquidationPrice": "0",
                "isolatedMargin": "0", "notional": _s(notional), "marginAsset": acct.asset, "isolatedWallet": "0",
                "initialMargin": _s(margin), "maintMargin": _s(abs(notional) * Decimal("0.004")),
                "positionInitialMargin": _s(margin), "openOrderInitialMargin": "0", "adl": 0,
                "bidNotional": "0", "askNotional": "0", "updateTime": pos.update_ms,
            })
        return rows

    def _totals(self, acct: Account) -> tuple[Decimal, Decimal]:
        rows = self._position_rows(acct)
        upnl = sum((Decimal(r["unRealizedProfit"]) for r in rows), ZERO)
        margin = sum((Decimal(r["initialMargin"]) for r in rows), ZERO)
        return upnl, margin

    def _available(self, acct: Account) -> Decimal:
        upnl, margin = self._totals(acct)
        return acct.wallet + upnl - margin

    def _position_risk(self, acct: Account, p: dict[str, str]) -> list[dict[str, Any]]:
        only = self._inst(p).venue_symbol if p.get("symbol") else None
        return self._position_rows(acct, only)

    def _asset_row(self, acct: Account) -> dict[str, Any]:
        upnl, margin = self._totals(acct)
        return {
            "asset": acct.asset, "walletBalance": _s(acct.wallet), "unrealizedProfit": _s(upnl),
            "marginBalance": _s(acct.wallet + upnl), "maintMargin": "0", "initialMargin": _s(margin),
            "positionInitialMargin": _s(margin), "openOrderInitialMargin": "0", "crossWalletBalance": _s(acct.wallet),
            "crossUnPnl": _s(upnl), "availableBalance": _s(acct.wallet + upnl - margin),
            "maxWithdrawAmount": _s(acct.wallet + upnl - margin), "updateTime": acct.update_ms or 1,
        }

    def _balance(self, acct: Account, p: dict[str, str]) -> list[dict[str, Any]]:
        row = self._asset_row(acct)
        return [{"accountAlias": "sim", "asset": acct.asset, "balance": row["walletBalance"],
                 "crossWalletBalance": row["crossWalletBalance"], "crossUnPnl": row["crossUnPnl"],
                 "availableBalance": row["availableBalance"], "maxWithdrawAmount": row["maxWithdrawAmount"],
                 "marginAvailable": True, "updateTime": row["updateTime"]}]

    def _account(self, acct: Account, p: dict[str, str]) -> dict[str, Any]:
        row = self._asset_row(acct)
        return {
            "totalInitialMargin": row["initialMargin"], "totalMaintMargin": "0",
            "totalWalletBalance": row["walletBalance"], "totalUnrealizedProfit": row["unrealizedProfit"],
            "totalMarginBalance": row["marginBalance"], "totalPositionInitialMargin": row["initialMargin"],
            "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": row["crossWalletBalance"],
            "totalCrossUnPnl": row["crossUnPnl"], "availableBalance": row["availableBalance"],
            "maxWithdrawAmount": row["maxWithdrawAmount"], "assets": [row],
            "positions": self._position_rows(acct),
        }

    def _leverage_bracket(self, acct: Account, p: dict[str, str]) -> list[dict[str, Any]]:
        return [{"symbol": sym, "brackets": [{"bracket": 1, "initialLeverage": 125, "notionalCap": 10**12,
                                              "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}]}
                for sym in self.sv.books]
