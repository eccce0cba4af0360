"""Replays of damaged captures: bad lines, a line or zstd frame cut short by a crash, a file
that is not zstd at all, receive times from the far future, and NaN values inside the
recorded messages. The replay goes on, names each problem with its file and line, and its
output is what the clean capture gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import zstandard
from typer.testing import CliRunner

from perparb.cli import app
from perparb.replay import replay
from perparb.scanner.core import Scanner, ScanSettings
from perparb.scanner.lifecycle import DAY_MINUTES, MINUTE_NS, PairStats
from perparb.store.capture import ReadReport, read_capture
from test_replay import MS, T0, okx_bbo, pepe_capture, write_capture

YEAR_NS = 365 * 86_400 * 10**9


def run(paths: list[Path], tmp_path: Path, name: str, report: ReadReport | None = None,
        settings: ScanSettings | None = None) -> tuple[bytes, dict]:
    out = tmp_path / f"{name}.out.jsonl"
    with out.open("wb") as fh:
        summary = replay(paths, Scanner(settings or ScanSettings(min_edge_bps=1.0)), opportunities_out=fh,
                         report=report)
    return out.read_bytes(), summary


def clean(tmp_path: Path) -> tuple[Path, list[bytes], bytes]:
    cap = pepe_capture(tmp_path / "clean.jsonl")
    out, summary = run([cap], tmp_path, "clean")
    assert out and summary["bad_lines"] == 0 and summary["truncated"] == 0
    return cap, cap.read_bytes().splitlines(keepends=True), out


def test_bad_lines_are_skipped_counted_and_named(tmp_path: Path) -> None:
    _, lines, want = clean(tmp_path)
    bad = [b"not json\n", b'{"recv_ns": "soon", "venue": "okx", "src": "ws", "raw": ""}\n',
           b'{"recv_ns": 1, "venue": "okx", "src": "carrier pigeon", "raw": ""}\n', b'{"recv_ns": 1\xff\xfe}\n',
           b"[]\n"]
    damaged = tmp_path / "damaged.jsonl"
    # Lines 3, 4, 6, 7 and 9 of the damaged file are the bad ones.
    damaged.write_bytes(b"".join(lines[:2] + bad[:2] + lines[2:3] + bad[2:4] + lines[3:4] + bad[4:] + lines[4:]))
    report = ReadReport()
    got, summary = run([damaged], tmp_path, "damaged", report)
    assert got == want
    assert summary["bad_lines"] == 5 and summary["records"] == 5
    assert [p.split(": ", 1)[0] for p in report.problems] == [f"{damaged}:{n}" for n in (3, 4, 6, 7, 9)]
    assert "src must be" in report.problems[2]


def test_a_truncated_final_line_is_the_end_of_the_file(tmp_path: Path) -> None:
    _, lines, want = clean(tmp_path)
    cut = tmp_path / "crashed.jsonl"
    extra = b'{"recv_ns": %d, "venue": "okx", "src": "ws", "raw": "{\\"arg\\": {\\"chan' % (T0 + 3000 * MS)
    cut.write_bytes(b"".join(lines) + extra)
    report = ReadReport()
    got, summary = run([cut], tmp_path, "crashed", report)
    assert got == want
    assert (summary["truncated"], summary["bad_lines"], summary["records"]) == (1, 0, 5)
    assert report.problems == [f"{cut}:6: truncated final line, read as the end of the file"]


def test_a_truncated_zstd_frame_is_the_end_of_the_file(tmp_path: Path) -> None:
    _, lines, _ = clean(tmp_path)
    # What a writer killed mid-stream leaves: blocks flushed as they filled, no frame end,
    # and the last block cut inside the fifth record.
    c = zstandard.ZstdCompressor().compressobj()
    body = b"".join(c.compress(line) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) for line in lines)
    packed = tmp_path / "crashed.jsonl.zst"
    packed.write_bytes(body[:-8])
    first4 = write_capture(tmp_path / "first4.jsonl", [])
    first4.write_bytes(b"".join(lines[:4]))
    want, _ = run([first4], tmp_path, "first4")
    report = ReadReport()
    got, summary = run([packed], tmp_path, "packed", report)
    assert summary["records"] == 4 and got == want
    assert summary["truncated"] == 1 and report.problems[0].startswith(f"{packed}:5: ")


def test_a_file_that_is_not_zstd_is_named_and_the_others_go_on(tmp_path: Path) -> None:
    cap, _, want = clean(tmp_path)
    fake = tmp_path / "fake.jsonl.zst"
    fake.write_bytes(cap.read_bytes())  # plain text under a .zst name
    out = tmp_path / "opps.jsonl"
    result = CliRunner().invoke(app, ["replay", str(fake), str(cap), "--opportunities-out", str(out),
                                      "--min-edge-bps", "1", "--json"], env={"PERPARB_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith(f"{fake}: not a zstd file (")
    summary = json.loads(result.stdout)
    assert summary["unreadable"] == [str(fake)] and summary["records"] == 5
    assert out.read_bytes() == want


def test_a_far_future_record_is_a_bad_line_and_never_moves_the_clock(tmp_path: Path) -> None:
    _, lines, want = clean(tmp_path)
    bogus = (b'{"recv_ns":%d,"venue":"okx","src":"ws","raw":"%s"}\n'
             % (T0 + 300 * YEAR_NS, okx_bbo("0.00001215", "30", "0.00001216", "50", T0 // MS).replace('"', '\\"')
                .encode()))
    for name, body, bad_line in (("middle", [*lines[:3], bogus, *lines[3:]], 4), ("end", [*lines, bogus], 6)):
        cap = tmp_path / f"{name}.jsonl"
        cap.write_bytes(b"".join(body))
        report = ReadReport()
        got, summary = run([cap], tmp_path, name, report)
        assert got == want, name
        assert summary["bad_lines"] == 1 and summary["records"] == 5
        [problem] = report.problems
        assert problem.startswith(f"{cap}:{bad_line}: recv_ns {T0 + 300 * YEAR_NS} is ")
        assert "ahead" in problem


def test_a_record_far_in_the_past_is_a_bad_line(tmp_path: Path) -> None:
    _, lines, want = clean(tmp_path)
    cap = tmp_path / "past.jsonl"
    cap.write_bytes(b"".join([*lines[:3], b'{"recv_ns":5,"venue":"okx","src":"ws","raw":"{}"}\n', *lines[3:]]))
    report = ReadReport()
    got, summary = run([cap], tmp_path, "past", report)
    assert got == want and summary["bad_lines"] == 1 and "behind" in report.problems[0]


def test_a_confirmed_jump_of_centuries_replays_both_sides(tmp_path: Path) -> None:
    # Two sessions three hundred years apart (merged captures, or a quiet venue): the second
    # is real because the records after it go on from its time. Its opportunity is found,
    # and the jump itself costs one sweep and at most a day of statistics buckets.
    first = pepe_capture(tmp_path / "first.jsonl")
    later = tmp_path / "later.jsonl"
    shift = 300 * YEAR_NS
    later.write_bytes(b"".join(
        json.dumps({**json.loads(line), "recv_ns": json.loads(line)["recv_ns"] + shift}).encode() + b"\n"
        for line in first.read_bytes().splitlines()))
    scanner = Scanner(ScanSettings(min_edge_bps=1.0, clock_window_s=400 * 365 * 86_400))  # both clocks plausible
    out = tmp_path / "both.jsonl"
    with out.open("wb") as fh:
        summary = replay([first, later], scanner, opportunities_out=fh)
    events = [json.loads(x) for x in out.read_text().splitlines()]
    opened = [e["ts_ns"] for e in events if e["event"] == "open"]
    assert opened == [T0 + 20 * MS, T0 + shift + 20 * MS]
    assert summary["bad_lines"] == 0 and summary["records"] == 10
    assert all(len(s.buckets) <= 2 * DAY_MINUTES + 2 for s in scanner.lifecycle.stats.values())


def test_open_time_over_a_huge_span_credits_only_the_last_day() -> None:
    stats = PairStats()
    start = 10 * MINUTE_NS
    end = start + 10**9 * MINUTE_NS  # about 1,900 years
    stats.add_open_time(start, end)
    assert len(stats.buckets) <= DAY_MINUTES + 1
    assert sum(b.open_ns for b in stats.buckets) == DAY_MINUTES * MINUTE_NS
    # The last hour's window is the minute starting at ``end`` (none of it elapsed yet) and
    # the 59 before it: 59 minutes observed, all of them open.
    hour = stats.summary(end, 60)
    assert (hour["observed_s"], hour["open_s"], hour["open_fraction"]) == (59 * 60, 59 * 60, 1.0)


def test_read_capture_keeps_a_single_record_file(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "one.jsonl", [(T0, "okx", "ws", "{}", None)])
    assert [r.recv_ns for r in read_capture(cap)] == [T0]


def bybit(kind: str, u: int, bids: list[list[str]], asks: list[list[str]], t_ms: int) -> str:
    return json.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": t_ms, "data": {
        "s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": u}})


def binance_top(bid: str, ask: str, t_ms: int) -> str:
    return json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": bid, "B": "10", "a": ask, "A": "10", "T": t_ms, "E": t_ms}})


def binance_mark(rate: str, t_ms: int) -> str:
    return json.dumps({"stream": "btcusdt@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": t_ms, "s": "BTCUSDT", "p": "65000", "i": "65000", "r": rate,
        "T": t_ms + 3_600_000}})


def bybit_ticker(kind: str, rate: str, t_ms: int) -> str:
    data = {"symbol": "BTCUSDT", "fundingRate": rate}
    if kind == "snapshot":
        data.update(nextFundingTime=str(t_ms + 3_600_000), fundingIntervalHour="8", markPrice="65200",
                    indexPrice="65000")
    return json.dumps({"topic": "tickers.BTCUSDT", "type": kind, "ts": t_ms, "data": data})


def test_nan_level_and_nan_funding_in_a_replay_change_only_counters_and_a_resync(tmp_path: Path) -> None:
    t = T0 // MS
    records = [
        (T0, "binance", "ws", binance_top("64990", "65000", t)),
        (T0 + 1, "binance", "ws", binance_mark("0.0001", t)),
        # Bybit bids 65,200 over Binance's 65,000 ask: a spread; and a funding differential.
        (T0 + 2, "bybit", "ws", bybit("snapshot", 1, [["65200", "2"], ["65190", "1"]], [["65210", "3"]], t)),
        (T0 + 3, "bybit", "ws", bybit_ticker("snapshot", "0.004", t)),
        (T0 + 500 * MS, "bybit", "ws", bybit("delta", 2, [["65200", "1.5"]], [], t + 500)),
        (T0 + 1500 * MS, "bybit", "ws", bybit("snapshot", 10, [["65250", "2"]], [["65260", "3"]], t + 1500)),
        (T0 + 2500 * MS, "binance", "ws", binance_top("65300", "65310", t + 2500)),
    ]
    hostile = [
        *records[:5],
        (T0 + 1000 * MS, "bybit", "ws", bybit_ticker("delta", "NaN", t + 1000)),
        (T0 + 1200 * MS, "binance", "ws", binance_mark("NaN", t + 1200)),
        # A NaN level, and right behind it (same receive time) the snapshot its resync brings.
        (T0 + 1500 * MS, "bybit", "ws", bybit("delta", 3, [["NaN", "5"]], [], t + 1500)),
        *records[5:],
    ]
    settings = ScanSettings(min_edge_bps=1.0, funding_min_apr=0.0)
    outs = []
    for name, recs in (("clean", records), ("hostile", hostile)):
        cap = write_capture(tmp_path / f"{name}.jsonl", [(r, v, s, raw, None) for r, v, s, raw in recs])
        out, summary = run([cap], tmp_path, name, settings=ScanSettings(**vars(settings)))
        outs.append((out, summary))
    (clean_out, clean_sum), (hostile_out, hostile_sum) = outs
    events = [json.loads(x) for x in clean_out.splitlines()]
    assert {e["kind"] for e in events if e["event"] == "open"} == {"spread", "funding"}
    assert hostile_out == clean_out
    assert clean_sum["decode_errors"] == 0 and clean_sum["book_resyncs"] == 0
    assert hostile_sum["decode_errors"] == 3 and hostile_sum["book_resyncs"] == 1
    assert hostile_sum["decode_errors_by_reason"] == {"bad_funding_rate": 2, "bad_price": 1}
    # Only the predicted rates (where a venue publishes none) may be null; a NaN never is.
    assert b"NaN" not in hostile_out
    assert b"null" not in re.sub(rb'"(predicted_apr|long_predicted_rate|short_predicted_rate)":null', b"", hostile_out)
