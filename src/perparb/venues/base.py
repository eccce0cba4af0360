"""What every venue module provides.

A venue is a declarative card (endpoints, channels, heartbeat, book-sync family, default
fees) plus pure functions: ``parse`` turns one raw message into normalized events,
``parse_rest`` does the same for REST responses (book snapshots, metadata), and the
``encode_*`` functions let the simulator speak the venue's protocol. A venue instance holds
only what the protocol itself makes stateful (e.g. Bybit's delta-merged tickers).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from perparb.feeds.booksync import Checksum
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Instrument, Level, MarketEvent
from perparb.validate import Limits, check

MS = 1_000_000  # nanoseconds in a millisecond
T = TypeVar("T")


class DecodeError(ValueError):
    """A message that could not be decoded; the text names what was wrong. ``reason`` is
    what it is counted under; ``books`` the (venue, venue_symbol) books the dropped
    message would have changed (they must resync)."""

    def __init__(self, text: str, reason: str = "malformed", books: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(text)
        self.reason = reason
        self.books = books


class Connection(msgspec.Struct, kw_only=True):
    """One websocket connection: where to connect and what to send once it is open."""

    path: str
    subscribe: list[str]
    instruments: list[Instrument]


class Venue:
    id: ClassVar[str]
    name: ClassVar[str]
    ws_url: ClassVar[str]
    rest_url: ClassVar[str]
    # Book-sync family: rest_bridged | in_stream | keyed | full
    book_sync: ClassVar[str]
    # Client heartbeat: message text and period in seconds (None: the server pings us).
    heartbeat_text: ClassVar[str | None] = None
    heartbeat_s: ClassVar[float] = 20.0
    # Reconnect when nothing arrived for this long.
    silence_s: ClassVar[float] = 30.0
    taker_fee: ClassVar[float] = 0.0005
    maker_fee: ClassVar[float] = 0.0002
    # REST paths whose responses describe the venue's contracts.
    metadata_paths: ClassVar[tuple[str, ...]] = ()
    # Least time between two REST calls of one feed, so that resyncing many books at once
    # stays inside the venue's request-weight limits.
    rest_min_interval_s: ClassVar[float] = 0.05
    # Whether the venue's book messages carry a sequence the simulator can break.
    sim_has_sequence: ClassVar[bool] = True
    # Whether the venue's main contract of an asset is its inverse one (BitMEX XBTUSD,
    # Deribit BTC-PERPETUAL): sessions and the simulator pick it over a linear one.
    prefers_inverse: ClassVar[bool] = False
    # REST call whose answer tells where to connect (KuCoin's token), if any.
    bootstrap_path: ClassVar[str | None] = None
    # Per-symbol protocol state merged from earlier messages (delta-merged tickers): names
    # of dicts keyed by venue symbol. A rejected message may already have written its bad
    # value there; the entry is dropped so that later deltas do not repeat it.
    merged_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.table = registry.venue_table(self.id)
        self.unknown: Counter[str] = Counter()
        self.problems: list[str] = []
        # Replies the protocol requires (e.g. Deribit's test_request); the transport sends them.
        self.outbox: list[str] = []
        self.limits = Limits()

    # -- the decode path: parse, then the plausibility check -----------------------------
    def decode(self, raw: str | bytes, recv_ns: int, clock_ns: int | None = None) -> list[MarketEvent]:
        """``parse`` plus the one plausibility check every event passes (``perparb.validate``).
        Whatever is wrong with the message, this raises DecodeError naming the venue, the
        field, the value and the message; ``clock_ns`` (the engine clock) also bounds the
        venue's timestamps."""
        try:
            events = self.parse(raw, recv_ns)
        except DecodeError:
            raise
        except UnicodeDecodeError:
            raise DecodeError(f"{self.id}: invalid UTF-8 at byte {_bad_utf8_at(raw)} in message {excerpt(raw)}",
                              ) from None
        except Exception as exc:  # a value of a type the parser did not expect, or a parser bug
            raise DecodeError(f"{self.id}: {type(exc).__name__}: {exc} in message {excerpt(raw)}",
                              "error") from exc
        limits = self.limits
        for ev in events:  # _checked, inlined: this runs for every message
            if check(ev, limits, clock_ns) is not None:
                self._checked(events, raw, clock_ns)
        return events

    def decode_rest(self, path: str, raw: str | bytes, recv_ns: int, clock_ns: int | None = None,
                    ) -> list[MarketEvent]:
        """``parse_rest`` through the same check."""
        try:
            events = self.parse_rest(path, raw, recv_ns)
        except DecodeError:
            raise
        except UnicodeDecodeError:
            raise DecodeError(f"{self.id}: invalid UTF-8 at byte {_bad_utf8_at(raw)}") from None
        except Exception as exc:
            raise DecodeError(f"{self.id}: {type(exc).__name__}: {exc}", "error") from exc
        return self._checked(events, raw, clock_ns)

    def _checked(self, events: list[MarketEvent], raw: str | bytes, clock_ns: int | None) -> list[MarketEvent]:
        limits = self.limits
        for ev in events:
            problem = check(ev, limits, clock_ns)
            if problem is not None:
                reason, field, value = problem
                for e in events:
                    self.discard(e.venue_symbol)
                books = tuple((e.venue, e.venue_symbol) for e in events if type(e) in (BookDelta, BookSnapshot))
                raise DecodeError(f"{self.id}: {field} {value!r} out of bounds ({reason}) for {ev.venue_symbol} "
                                  f"in message {excerpt(raw)}", reason, tuple(dict.fromkeys(books)))
        return events

    # -- lookups -------------------------------------------------------------------------
    def instrument(self, venue_symbol: str) -> Instrument | None:
        inst = self.table.get(venue_symbol)
        if inst is None:
            inst = self.derive(venue_symbol)
            if inst is None:
                self.unknown[venue_symbol] += 1
                self.problems.append(f"unknown symbol {venue_symbol!r} on {self.id}")
                return None
            self.table[venue_symbol] = inst
        return inst

    def derive(self, venue_symbol: str) -> Instrument | None:
        """An instrument built from the symbol alone, for venues whose symbols say all there
        is to know about units (marked status='derived'); None elsewhere."""
        return None

    def discard(self, venue_symbol: str) -> None:
        """Forget the merged protocol state of one symbol (see ``merged_state``)."""
        for name in self.merged_state:
            getattr(self, name).pop(venue_symbol, None)

    def take_problems(self) -> list[str]:
        out, self.problems = self.problems, []
        return out

    # -- feed side -----------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        raise NotImplementedError

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        raise NotImplementedError

    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        """REST responses that carry market data (book snapshots); metadata is separate."""
        return []

    def book_checksum(self) -> Checksum | None:
        """The checksum over the venue's own level text (None: the venue has none)."""
        return None

    def rest_request(self, path: str) -> tuple[str, str, bytes | None]:
        """(method, path, body) for a REST path as recorded in captures. Venues whose API
        takes POST with a JSON body (Hyperliquid ``/info``) record the body's fields as a
        query string (``/info?type=meta``) and turn it back into a POST here."""
        return "GET", path, None

    def connect_url(self, ws_url: str, conn: Connection, bootstrap: bytes | None) -> str:
        """Where to open ``conn``; ``bootstrap`` is the answer to ``bootstrap_path``."""
        return ws_url + conn.path

    def book_snapshot_path(self, inst: Instrument) -> str | None:
        """REST path of a book snapshot, for venues whose books sync from one."""
        return None

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        """Messages that make the venue send a fresh book snapshot."""
        return []

    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        return []

    # -- simulator side ------------------------------------------------------------------
    # The simulator calls these with native values; see perparb.sim.
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        """Replies to a client message and the (channel, venue_symbol) topics it subscribes."""
        raise NotImplementedError

    def sim_contract(self, asset: str) -> Instrument | None:
        """The contract the simulator lists for ``asset`` when the instrument snapshot has none
        for this venue. The simulator is the venue: it serves this contract's metadata, so
        clients learn it exactly as they learn real contracts. Default: a symbol-derived one."""
        return self.derive(f"{asset}USDT")

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        """REST metadata responses describing ``instruments``, by path."""
        raise NotImplementedError

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str | None:
        """Top-of-book message (native px, qty); None if the venue's quote comes from its book."""
        return None

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str | list[str]:
        """Book message(s) with native levels; ``first_seq..seq`` are the updates it covers and
        ``prev_seq`` the seq of the previous book message (a snapshot has no previous). Venues
        that send one message per level change return a list of frames."""
        raise NotImplementedError

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        """Funding message; ``full`` False lets delta-merged channels send changes only."""
        raise NotImplementedError

    def sim_bootstrap(self, ws_url: str) -> dict[str, bytes]:
        """REST answers that point a client at the simulator's websocket (``bootstrap_path``)."""
        return {}

    def sim_rest_funding(self, path: str) -> str | None:
        """The venue symbol a REST funding request asks for, or None."""
        return None

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        raise NotImplementedError

    def sim_rest_book(self, path: str) -> str | None:
        """The venue symbol a REST book-snapshot request asks for, or None."""
        return None

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        raise NotImplementedError


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_DAY_NS: dict[str, int] = {}


def iso_ns(s: str) -> int:
    """ISO-8601 UTC text -> integer nanoseconds. The common venue shape
    (``2021-07-22T22:36:09.712Z``) is read by hand; anything else goes through datetime."""
    day = _DAY_NS.get(s[:10])
    if day is None:
        if len(_DAY_NS) > 10_000:
            _DAY_NS.clear()
        day = _DAY_NS[s[:10]] = (date.fromisoformat(s[:10]) - _EPOCH_DAY).days * 86_400_000_000_000
    if len(s) == 24 and s[10] == "T" and s[19] == "." and s[23] == "Z":
        secs = int(s[11:13]) * 3600 + int(s[14:16]) * 60 + int(s[17:19])
        return day + secs * 1_000_000_000 + int(s[20:23]) * 1_000_000
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def asked_symbol(path: str, rest_path: str, key: str | None = "symbol") -> str | None:
    """The symbol a REST request to the simulator asks for, if it is for ``rest_path``: the
    query parameter ``key``, or with ``key`` None the path segment after ``rest_path``."""
    url = urlsplit(path)
    if key is None:
        head, _, name = url.path.rpartition("/")
        return name if head == rest_path else None
    return parse_qs(url.query).get(key, [None])[0] if url.path == rest_path else None


def num_text(x: float) -> str:
    """Plain decimal text that reads back as the same float, without an exponent: how the
    venues write numbers in JSON strings (the simulator's encoders use it)."""
    s = format(Decimal(repr(float(x))), "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


class SimFullBooks:
    """Whole books per symbol, for simulated venues whose protocol only sends full books
    (the simulator hands the encoders changes; these venues send the result)."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}

    def apply(self, sym: str, snapshot: bool, bids: list[Level], asks: list[Level],
              ) -> tuple[dict[float, float], dict[float, float]]:
        book = self.books.get(sym)
        if book is None or snapshot:
            book = self.books[sym] = ({}, {})
        for side, changes in zip(book, (bids, asks), strict=True):
            for p, q in changes:
                if q > 0.0:
                    side[p] = q
                else:
                    side.pop(p, None)
        return book


def one_at_a_time(bids: list[Level], asks: list[Level]) -> list[tuple[bool, float, float]]:
    """``(is_bid, price, size)`` of one book move, in an order a venue that publishes one
    change at a time (KuCoin, BitMEX) can send without its book ever passing through a
    state a matching engine never has, neither crossed nor with an empty side: first the
    side the price moves toward, then the other, each adding its new levels before
    removing the old. When prices rise, new asks lie above every old bid, and once the old
    asks are gone the new bids lie below every ask left; falling prices mirror that."""
    removed = [p for p, q in (*bids, *asks) if q <= 0.0]
    added = [p for p, q in (*bids, *asks) if q > 0.0]
    rising = bool(removed) and min(removed) < min(added, default=float("inf"))
    sides = ((False, asks), (True, bids)) if rising else ((True, bids), (False, asks))
    return [(is_bid, p, q) for is_bid, changes in sides for adding in (True, False)
            for p, q in changes if (q > 0.0) is adding]


def _bad_utf8_at(raw: str | bytes) -> int:
    """Offset of the first byte that is not UTF-8 (the decoder's own offset is relative to
    the string it was reading)."""
    try:
        (raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


def excerpt(raw: str | bytes) -> str:
    """The start of a message, printable whatever bytes it holds."""
    text = raw if isinstance(raw, str) else raw[:200].decode("utf-8", "replace")
    return repr(text[:160])


def decode_error(venue: str, exc: Exception, raw: str | bytes) -> DecodeError:
    if isinstance(exc, DecodeError):
        return exc  # already names the venue and the message
    return DecodeError(f"{venue}: {exc} in message {excerpt(raw)}")


def listing(venue: str, raw: str | bytes, item: type[T], *envelope: str, ok: dict[str, Any] | None = None,
            ) -> list[T]:
    """The contract objects of a REST metadata body, read with the venue's own ``item`` type.

    Live bodies hold them under the venue's ``envelope`` keys (``result``, ``list``), and an
    envelope field in ``ok`` with another value is the venue's error. Stored copies that a
    third party reshaped are read too: a bare array of the objects, a dict keyed by symbol,
    or the third party's own wrapper holding one array. A single object under the envelope
    (Deribit ``get_instrument``) is a list of one."""
    try:
        doc = msgspec.json.decode(raw)
        for key, want in (ok or {}).items():
            if isinstance(doc, dict) and key in doc and doc[key] != want:
                raise ValueError(f"{key} {doc[key]!r} ({doc.get('msg') or doc.get('retMsg') or doc.get('error')})")
        node, enveloped = doc, True
        for key in envelope:
            if not isinstance(node, dict) or key not in node:
                if node is not doc:
                    raise ValueError(f"no {key!r} in the response")
                enveloped = False
                break
            node = node[key]
        if isinstance(node, dict):
            values = list(node.values())
            arrays = [v for v in values if isinstance(v, list)]
            if values and all(isinstance(v, dict) for v in values):
                node = values
            elif enveloped:
                node = [node]
            elif len(arrays) == 1:
                node = arrays[0]
            else:
                raise ValueError("no contract list in the response")
        if not isinstance(node, list):
            raise ValueError(f"expected a list of contracts, got {type(node).__name__}")
        out: list[T] = msgspec.convert(node, list[item], strict=False)  # type: ignore[valid-type]
        return out
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise decode_error(venue, exc, raw) from None
