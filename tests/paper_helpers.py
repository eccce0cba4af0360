"""Hand-built markets for the trading tests: a real Engine fed book and funding events."""

from __future__ import annotations

from perparb.bus import InProcessBus
from perparb.bus.messages import Message
from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level
from perparb.paper.market import EngineView

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S
HOUR = 3600 * S


def inst(venue: str = "okx", venue_symbol: str = "BTC-USDT-SWAP", asset: str = "BTC", quote: str = "USDT",
         **kw: object) -> Instrument:
    args: dict[str, object] = dict(venue=venue, venue_symbol=venue_symbol, symbol=f"{asset}/{quote}:{quote}",
                                   asset=asset, quote=quote, settle=quote, taker_fee=0.0005, maker_fee=0.0002)
    args.update(kw)
    return Instrument(**args)  # type: ignore[arg-type]


class Market:
    """An engine with connected venues, fed by hand; ``at`` moves engine time first, which
    runs timers due by then before the event is applied (as a message would)."""

    def __init__(self, *instruments: Instrument) -> None:
        venues = sorted({i.venue for i in instruments})
        self.engine = Engine(Registry(instruments), venues)
        for v in venues:
            self.engine.set_connected(v, True, T0)
        self.engine.advance(T0)
        self.view = EngineView(self.engine)

    def snapshot(self, i: Instrument, bids: list[Level], asks: list[Level], at: int) -> None:
        self.engine.advance(at)
        self.engine.on_event(BookSnapshot(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, bids=bids,
                                          asks=asks, ts_exchange_ns=at, recv_ns=at))

    def delta(self, i: Instrument, bids: list[Level], asks: list[Level], at: int) -> None:
        self.engine.advance(at)
        self.engine.on_event(BookDelta(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, bids=bids,
                                       asks=asks, ts_exchange_ns=at, recv_ns=at))

    def funding(self, i: Instrument, rate: float, next_ns: int, at: int, mark: float | None = None,
                interval_h: float | None = None) -> None:
        self.engine.advance(at)
        self.engine.on_event(Funding(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, rate=rate,
                                     interval_h=interval_h or i.funding_interval_h, next_funding_ns=next_ns,
                                     mark_px=mark, ts_exchange_ns=at, recv_ns=at))

    def advance(self, at: int) -> None:
        self.engine.advance(at)


class Tape:
    """Every message published on a bus, by channel, in order."""

    def __init__(self, bus: InProcessBus, *channels: str) -> None:
        self.msgs: list[Message] = []
        for ch in channels:
            bus.subscribe(ch, self.msgs.append)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [m for m in self.msgs if isinstance(m, kind)]
