#!/usr/bin/env python3
"""DuckDB side of scripts/bench-sql.sh: runs the same queries over the same Parquet files,
checks that both engines agree, and prints the Markdown report.

Run by bench-sql.sh inside a venv that has duckdb (and pytz, which DuckDB needs to hand
TIMESTAMP WITH TIME ZONE values to Python). Input: the work directory, where bench-sql.sh
left tidewatch.json (timings, restart figures, sizes) and one CSV result per query.
"""

import csv
import json
import math
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REL_TOL = 1e-6


def duckdb_queries(glob, day_start, day_end):
    """The Tidewatch queries, in DuckDB's dialect (time_bucket for date_bin, ordered
    first/last for first_value/last_value), with the same semantics."""
    src = f"read_parquet('{glob}')"
    return {
        "a": f"""SELECT symbol, time_bucket(INTERVAL '5 minutes', ts) AS bucket,
                 sum(price*size)/sum(size) AS vwap,
                 first(price ORDER BY ts) AS open, max(price) AS high, min(price) AS low,
                 last(price ORDER BY ts) AS close, count(*) AS trades
               FROM {src}
               WHERE ts >= TIMESTAMPTZ '{day_start}' AND ts < TIMESTAMPTZ '{day_end}'
               GROUP BY 1, 2""",
        "b": f"SELECT symbol, count(*) FROM {src} GROUP BY symbol",
        "c": f"""SELECT symbol, sum(size) AS volume FROM {src}
               GROUP BY symbol ORDER BY volume DESC LIMIT 10""",
    }


def run_duckdb(work, tw, runs, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET TimeZone='UTC'")
    queries = duckdb_queries(tw["parquet_glob"], tw["day_start"], tw["day_end"])
    (work / "duckdb_sql.txt").write_text(
        "\n\n".join(f"-- {k}\n{q};" for k, q in queries.items()) + "\n"
    )
    results, timings = {}, {}
    for name, sql in queries.items():
        rows = con.execute(sql).fetchall()  # warm-up, not timed (as on the Tidewatch side)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append(time.perf_counter() - t0)
        results[name] = rows
        timings[name] = times
        print(f"  duckdb {name}: median {statistics.median(times) * 1e3:.1f} ms "
              f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in times)} ms)", file=sys.stderr)
    version = duckdb.__version__
    return results, timings, version


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [row for row in reader]


def epoch_ms(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp() * 1000)
    text = str(value).strip().replace(" ", "T")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


def close(a, b, tol=REL_TOL):
    return math.isclose(a, b, rel_tol=tol, abs_tol=0.0) or a == b


def compare(work, tw, duck):
    """Returns (ok, lines): ok is False on any mismatch in b, c, or a's exact columns."""
    lines, ok = [], True

    def bad(msg):
        nonlocal ok
        ok = False
        lines.append(f"MISMATCH {msg}")

    # b: count per symbol, exact.
    _, rows = read_csv(work / "tidewatch_b.csv")
    tw_b = {r[0]: int(r[1]) for r in rows}
    dk_b = {r[0]: int(r[1]) for r in duck["b"]}
    if tw_b != dk_b:
        for sym in sorted(set(tw_b) | set(dk_b)):
            if tw_b.get(sym) != dk_b.get(sym):
                bad(f"b: {sym}: tidewatch {tw_b.get(sym)} vs duckdb {dk_b.get(sym)}")
    else:
        lines.append(f"b: counts equal for all {len(tw_b)} symbols "
                     f"(total {sum(tw_b.values()):,})")
    if tw.get("events") is not None and sum(tw_b.values()) != tw["events"]:
        bad(f"b: tidewatch counts {sum(tw_b.values()):,} events, backfill wrote {tw['events']:,}")
    if sum(dk_b.values()) != tw.get("events", sum(dk_b.values())):
        bad(f"b: the Parquet files hold {sum(dk_b.values()):,} events, backfill wrote {tw['events']:,}")

    # c: top 10 by volume, same symbols in the same order, volumes to 1e-6 relative.
    _, rows = read_csv(work / "tidewatch_c.csv")
    tw_c = [(r[0], float(r[1])) for r in rows]
    dk_c = [(r[0], float(r[1])) for r in duck["c"]]
    c_ok = len(tw_c) == len(dk_c)
    if not c_ok:
        bad(f"c: {len(tw_c)} rows from tidewatch, {len(dk_c)} from duckdb")
    for (ts, tv), (ds, dv) in zip(tw_c, dk_c):
        if ts != ds or not close(tv, dv):
            c_ok = False
            bad(f"c: tidewatch ({ts}, {tv!r}) vs duckdb ({ds}, {dv!r})")
    if c_ok:
        worst = max((abs(tv - dv) / abs(dv) for (_, tv), (_, dv) in zip(tw_c, dk_c) if dv), default=0)
        lines.append(f"c: same 10 symbols in the same order, volumes agree "
                     f"(largest relative difference {worst:.1e})")

    # a: per (symbol, bucket): trades, high, low exact; vwap to 1e-6 relative. open/close
    # order by ts alone, so trades of one symbol in the same millisecond may legitimately
    # give either engine a different open/close: reported, not failed.
    header, rows = read_csv(work / "tidewatch_a.csv")
    col = {name: i for i, name in enumerate(header)}
    tw_a = {}
    for r in rows:
        key = (r[col["symbol"]], epoch_ms(r[col["bucket"]]))
        tw_a[key] = r
    dk_a = {(r[0], epoch_ms(r[1])): r for r in duck["a"]}
    if set(tw_a) != set(dk_a):
        only_tw, only_dk = set(tw_a) - set(dk_a), set(dk_a) - set(tw_a)
        bad(f"a: groups differ: {len(only_tw)} only in tidewatch, {len(only_dk)} only in duckdb "
            f"(e.g. {sorted(only_tw)[:2]} / {sorted(only_dk)[:2]})")
    exact_bad = vwap_bad = oc_diff = 0
    for key in set(tw_a) & set(dk_a):
        t, d = tw_a[key], dk_a[key]
        # DuckDB row: symbol, bucket, vwap, open, high, low, close, trades
        if int(t[col["trades"]]) != d[7] or float(t[col["high"]]) != d[4] or float(t[col["low"]]) != d[5]:
            exact_bad += 1
        if not close(float(t[col["vwap"]]), d[2]):
            vwap_bad += 1
        if float(t[col["open"]]) != d[3] or float(t[col["close"]]) != d[6]:
            oc_diff += 1
    if exact_bad:
        bad(f"a: {exact_bad} groups differ in trades/high/low")
    if vwap_bad:
        bad(f"a: {vwap_bad} groups differ in vwap beyond {REL_TOL:g} relative")
    if not exact_bad and not vwap_bad and set(tw_a) == set(dk_a):
        lines.append(f"a: {len(tw_a)} groups; trades, high, low equal, vwap within {REL_TOL:g}")
    if oc_diff:
        lines.append(f"a: note: {oc_diff} groups differ in open/close (ties in ts within a "
                     f"symbol make first/last by ts alone ambiguous)")
    elif set(tw_a) == set(dk_a):
        lines.append("a: open and close equal in every group")
    return ok, lines


def fmt_ms(seconds):
    return "failed" if seconds is None else f"{seconds * 1e3:,.0f}" if seconds >= 0.1 else f"{seconds * 1e3:.1f}"


def report(work, tw, duck_times, duck_version, cmp_lines, runs):
    labels = {
        "a": "a. VWAP + OHLC per symbol per 5 min, one day",
        "b": "b. count(*) by symbol, all data",
        "c": "c. top 10 symbols by sum(size), all data",
    }
    out = []
    out.append(f"Events: {tw['events']:,} market ticks ({tw['days']} days at {tw['rate']:.4g} trades/s, "
               f"seed {tw['seed']}, until {tw['until']}); query a covers {tw['day_start']} .. {tw['day_end']}")
    out.append(f"On disk: {tw['segment_bytes'] / 1e6:,.1f} MB of Parquet in {tw['segment_files']} files "
               f"(segments/market.ticks), {tw['wal_bytes'] / 1e6:,.1f} MB of WAL, "
               f"{tw['data_dir_bytes'] / 1e6:,.1f} MB in the data directory")
    out.append(f"Generation: {tw['backfill_events_per_second'] / 1e6:.2f} M events/s as backfill reports it "
               f"({tw['backfill_elapsed_ms'] / 1e3:.1f} s); the whole command, engine close and Parquet "
               f"flush included: {tw['backfill_wall_s']:.1f} s, {tw['events'] / tw['backfill_wall_s'] / 1e6:.2f} M events/s")
    out.append("")
    out.append(f"| query | Tidewatch median ms | DuckDB median ms | Tidewatch / DuckDB |")
    out.append("|---|---:|---:|---:|")
    for q in ("a", "b", "c"):
        tw_times = tw["queries"][q]["times"]
        tw_med = statistics.median(tw_times) if tw_times else None
        dk_med = statistics.median(duck_times[q]) if duck_times.get(q) else None
        ratio = f"{tw_med / dk_med:.2f}x" if tw_med and dk_med else "n/a"
        out.append(f"| {labels[q]} | {fmt_ms(tw_med)} | {fmt_ms(dk_med)} | {ratio} |")
    out.append("")
    rs = tw["restart"]
    out.append(f"| restart | runs | median |")
    out.append("|---|---|---:|")
    out.append(f"| wall clock, process start to `/readyz` 200 | {', '.join(f'{x:.2f}' for x in rs['wall_s'])} s | "
               f"{statistics.median(rs['wall_s']):.2f} s |")
    logged = [x for x in rs["logged_ms"] if x is not None]
    if logged:
        out.append(f"| engine recovery, logged `ready` `elapsed_ms` | {', '.join(str(x) for x in logged)} ms | "
                   f"{statistics.median(logged):.0f} ms |")
    out.append("")
    out.append(f"Runs: {runs} timed per query and engine, after one untimed warm-up; Tidewatch times are "
               f"curl's time_total for POST /api/v1/sql with format csv (parse, plan, execute, CSV "
               f"encoding of a small result, HTTP on loopback); DuckDB {duck_version} times are "
               f"time.perf_counter around execute().fetchall() in Python, threads=2, over "
               f"read_parquet of the same files, with the server stopped. Both read files in the "
               f"page cache.")
    out.append(f"Machine: {tw['machine']}")
    out.append("")
    out.append("Correctness (Tidewatch vs DuckDB):")
    out.extend(f"- {line}" for line in cmp_lines)
    return "\n".join(out)


def main():
    if len(sys.argv) != 4:
        print("usage: bench_sql.py WORK_DIR RUNS THREADS", file=sys.stderr)
        return 2
    work, runs, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    tw = json.loads((work / "tidewatch.json").read_text())
    duck, duck_times, version = run_duckdb(work, tw, runs, threads)
    failed = [q for q in ("a", "b", "c") if not tw["queries"][q]["times"]]
    if failed:
        ok, lines = False, [f"tidewatch query {q} failed: {tw['queries'][q].get('error')}" for q in failed]
    else:
        ok, lines = compare(work, tw, duck)
    text = report(work, tw, duck_times, version, lines, runs)
    (work / "report.md").write_text(text + "\n")
    print(text)
    if not ok:
        print("\n!!!!!!!! MISMATCH: Tidewatch and DuckDB disagree (see above) !!!!!!!!", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
