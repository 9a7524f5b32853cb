#!/usr/bin/env bash
# SQL over stored events against DuckDB, and restart time. See docs/BENCHMARKS.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench-sql.sh [-h]

Benchmarks Tidewatch's SQL (POST /api/v1/sql) over stored market ticks against DuckDB
over the same Parquet segments, and the server's restart time on that data directory.

  1. builds target/release/tidewatch and writes EVENTS deterministic market ticks with
     `tidewatch backfill` (DAYS days ending at UNTIL, rate EVENTS / DAYS / 86400), which
     closes the engine and so leaves them in Parquet under DATA/segments/market.ticks;
  2. starts `tidewatch serve` RESTARTS times and times process start -> /readyz 200;
  3. runs three queries RUNS times each (after one warm-up) through /api/v1/sql with
     format=csv: (a) VWAP + OHLC per symbol per 5 minutes over the last day, (b) count by
     symbol, (c) top 10 symbols by volume;
  4. runs the same queries in DuckDB (pip-installed into a venv under SCRATCH, threads=2)
     over read_parquet of the same files, and checks both give the same answers;
  5. prints a Markdown table (also written to SCRATCH/work-EVENTS/report.md).

Environment (defaults in brackets):
  EVENTS     market ticks to generate [10000000]; the design budget is about 100000000
  DAYS       days of history they span [7]
  UNTIL      end of the history, RFC 3339 [2026-11-01T00:00:00Z]
  SEED       simulator seed [42]
  RUNS       timed runs per query and engine [5]
  RESTARTS   timed server starts [3]
  THREADS    DuckDB threads [2]; Tidewatch's SQL runs on [sql] threads (default 2)
  SCRATCH    scratch directory for data, venv and results [/tmp/tidewatch-bench-sql]
  FRESH=1    regenerate the dataset even if SCRATCH already holds one for these settings
  SKIP_BUILD=1  use target/release/tidewatch as it is
  BENCH_BIN  use this binary instead of building (e.g. a copy others' builds won't replace)
  TIDEWATCH_SQL__TIMEOUT  per-query limit of the server [600s here; 30s is the default]

Needs: cargo, curl, jq, python3 with venv, and PyPI reachable (duckdb, pytz).
Exits non-zero if the engines disagree or a query fails.
EOF
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
ROOT=$PWD

EVENTS=${EVENTS:-10000000}
DAYS=${DAYS:-7}
UNTIL=${UNTIL:-2026-11-01T00:00:00Z}
SEED=${SEED:-42}
RUNS=${RUNS:-5}
RESTARTS=${RESTARTS:-3}
THREADS=${THREADS:-2}
SCRATCH=${SCRATCH:-/tmp/tidewatch-bench-sql}
# Queries over 100 M events may outlast the default 30 s.
export TIDEWATCH_SQL__TIMEOUT=${TIDEWATCH_SQL__TIMEOUT:-600s}

for tool in cargo curl jq python3; do
    command -v "$tool" >/dev/null || { echo "bench-sql: $tool is required" >&2; exit 1; }
done

until_s=$(date -u -d "$UNTIL" +%s) || { echo "bench-sql: UNTIL=$UNTIL is not a date" >&2; exit 1; }
if (( until_s > $(date +%s) )); then
    echo "bench-sql: UNTIL=$UNTIL is in the future; set UNTIL to a past time" >&2
    exit 1
fi
RATE=$(python3 -c "print(repr($EVENTS / ($DAYS * 86400)))")
DAY_START=$(date -u -d "@$((until_s - 86400))" +%Y-%m-%dT%H:%M:%SZ)
DAY_END=$(date -u -d "@$until_s" +%Y-%m-%dT%H:%M:%SZ)

DATA=$SCRATCH/data-$EVENTS-$DAYS-$SEED
WORK=$SCRATCH/work-$EVENTS-$DAYS-$SEED
VENV=$SCRATCH/venv
BIN=${BENCH_BIN:-$ROOT/target/release/tidewatch}
mkdir -p "$SCRATCH" "$WORK"
log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build and DuckDB venv
if [[ -z ${SKIP_BUILD:-} && -z ${BENCH_BIN:-} ]]; then
    log "building the release binary"
    cargo build --release -p tidewatch >&2
fi
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import duckdb, pytz' 2>/dev/null; then
    log "installing DuckDB into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check duckdb pytz >&2
fi

# ------------------------------------------------------------------------------ dataset
marker=$DATA/.bench-backfill.json
params=$(jq -nc --argjson events "$EVENTS" --argjson days "$DAYS" --arg until "$UNTIL" --argjson seed "$SEED" \
    '{events: $events, days: $days, until: $until, seed: $seed}')
if [[ -n ${FRESH:-} || ! -f $marker ]] || ! jq -e --argjson p "$params" '.bench == $p' "$marker" >/dev/null 2>&1; then
    free_kb=$(df -Pk "$SCRATCH" | awk 'NR == 2 { print $4 }')
    # Parquet (about 12 B/event at 100 M), the WAL not yet persisted, rollup history and
    # checkpoints (1.35 GB in all at 100 M), plus headroom.
    need_kb=$(( EVENTS / 1000 * 40 ))
    if (( free_kb < need_kb )); then
        echo "bench-sql: $SCRATCH has $((free_kb / 1024)) MiB free, want about $((need_kb / 1024)) MiB" >&2
        exit 1
    fi
    rm -rf "$DATA"
    log "backfilling $EVENTS events: $DAYS days until $UNTIL at $RATE trades/s (seed $SEED) into $DATA"
    t0=$(date +%s%N)
    "$BIN" backfill --data-dir "$DATA" --days "$DAYS" --until "$UNTIL" --rate "$RATE" \
        --seed "$SEED" --json >"$WORK/backfill.json" 2>"$WORK/backfill.log" ||
        { head -n 20 "$WORK/backfill.log" >&2; echo "bench-sql: backfill failed" >&2; exit 1; }
    t1=$(date +%s%N)
    jq --argjson wall_ns "$((t1 - t0))" --argjson p "$params" '. + {wall_s: ($wall_ns / 1e9), bench: $p}' \
        "$WORK/backfill.json" >"$marker"
else
    log "reusing the dataset in $DATA (FRESH=1 to regenerate)"
fi
cat "$marker" >&2
events=$(jq -r .events "$marker")

segments=$DATA/segments/market.ticks
shopt -s nullglob
parquet_files=("$segments"/*.parquet)
shopt -u nullglob
if (( ${#parquet_files[@]} == 0 )); then
    echo "bench-sql: backfill left no Parquet segments in $segments" >&2
    exit 1
fi
segment_bytes=$(du -sb --apparent-size "${parquet_files[@]}" | awk '{ s += $1 } END { print s }')
wal_bytes=$(du -sb --apparent-size "$DATA/wal" | awk '{ print $1 }')
data_bytes=$(du -sb --apparent-size "$DATA" | awk '{ print $1 }')
log "$events events; ${#parquet_files[@]} Parquet files, $segment_bytes bytes; WAL $wal_bytes bytes"

# ------------------------------------------------------------------------------- server
server_pid=""
stop_server() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# Starts the server on a free port; sets server_pid, url, ready_s (process start to
# /readyz 200, wall clock) and logged_ms (the `ready` log line's elapsed_ms).
start_server() {
    local run=$1 out=$WORK/serve-$1.out err=$WORK/serve-$1.log t0 t1 code
    t0=$(date +%s%N)
    "$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:0 --log-format json >"$out" 2>"$err" &
    server_pid=$!
    url=""
    while [[ -z $url ]]; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$err" >&2; echo "bench-sql: server exited" >&2; exit 1; }
        url=$(sed -n 's|^tidewatch listening on \(http://[^ ]*\)$|\1|p' "$out")
        [[ -n $url ]] || sleep 0.005
    done
    until code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz") && [[ $code == 200 ]]; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$err" >&2; echo "bench-sql: server exited" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(date +%s%N)
    ready_s=$(python3 -c "print(($t1 - $t0) / 1e9)")
    logged_ms=$(jq -r 'select(.fields.message == "ready") | .fields.elapsed_ms' "$err" 2>/dev/null | head -n1)
    [[ -n $logged_ms ]] || logged_ms=null
    log "start $run: /readyz 200 after ${ready_s}s (logged recovery elapsed_ms: $logged_ms)"
}

ready_list=() logged_list=()
for run in $(seq 1 "$RESTARTS"); do
    start_server "$run"
    ready_list+=("$ready_s") logged_list+=("$logged_ms")
    (( run == RESTARTS )) || stop_server
done

# ------------------------------------------------------------------------------ queries
declare -A SQL
SQL[a]="SELECT symbol, date_bin(INTERVAL '5 minutes', ts) AS bucket, sum(price*size)/sum(size) AS vwap, first_value(price ORDER BY ts) AS open, max(price) AS high, min(price) AS low, last_value(price ORDER BY ts) AS close, count(*) AS trades FROM market_ticks WHERE ts >= '$DAY_START' AND ts < '$DAY_END' GROUP BY 1, 2"
SQL[b]="SELECT symbol, count(*) FROM market_ticks GROUP BY symbol"
SQL[c]="SELECT symbol, sum(size) AS volume FROM market_ticks GROUP BY symbol ORDER BY volume DESC LIMIT 10"

queries_json='{}'
status=0
for q in a b c; do
    jq -n --arg sql "${SQL[$q]}" '{sql: $sql, format: "csv"}' >"$WORK/query_$q.json"
    times=() error=""
    for i in $(seq 0 "$RUNS"); do   # run 0 is the warm-up
        result=$(curl -sS -o "$WORK/tidewatch_$q.csv" -w '%{http_code} %{time_total}' \
            -H 'content-type: application/json' --data-binary "@$WORK/query_$q.json" "$url/api/v1/sql")
        if [[ ${result%% *} != 200 ]]; then
            error="HTTP ${result%% *}: $(head -c 500 "$WORK/tidewatch_$q.csv")"
            echo "bench-sql: query $q failed: $error" >&2
            times=()
            status=1
            break
        fi
        (( i == 0 )) || times+=("${result#* }")
    done
    (( ${#times[@]} == 0 )) || log "tidewatch $q: runs ${times[*]} s"
    queries_json=$(jq --arg q "$q" --arg sql "${SQL[$q]}" --arg error "$error" \
        --argjson times "$(printf '%s\n' "${times[@]}" | jq -s 'map(select(. != null))')" \
        '. + {($q): {sql: $sql, times: $times, error: (if $error == "" then null else $error end)}}' \
        <<<"$queries_json")
done
stop_server

# ------------------------------------------------------------------------ DuckDB, report
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
machine="$(nproc) vCPU ($cpu), $mem RAM, shared with other work (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)); $(date -u +%Y-%m-%d)"

jq -n \
    --argjson backfill "$(cat "$marker")" \
    --argjson queries "$queries_json" \
    --argjson ready "$(printf '%s\n' "${ready_list[@]}" | jq -s .)" \
    --argjson logged "$(printf '%s\n' "${logged_list[@]}" | jq -s .)" \
    --arg glob "$segments/*.parquet" --arg day_start "$DAY_START" --arg day_end "$DAY_END" \
    --arg until "$UNTIL" --argjson days "$DAYS" --argjson rate "$RATE" --argjson seed "$SEED" \
    --argjson segment_bytes "$segment_bytes" --argjson segment_files "${#parquet_files[@]}" \
    --argjson wal_bytes "$wal_bytes" --argjson data_dir_bytes "$data_bytes" --arg machine "$machine" \
    '{events: $backfill.events, backfill_events_per_second: $backfill.events_per_second,
      backfill_elapsed_ms: $backfill.elapsed_ms, backfill_wall_s: $backfill.wall_s,
      days: $days, rate: $rate, seed: $seed, until: $until,
      day_start: $day_start, day_end: $day_end, parquet_glob: $glob,
      segment_bytes: $segment_bytes, segment_files: $segment_files, wal_bytes: $wal_bytes,
      data_dir_bytes: $data_dir_bytes, machine: $machine,
      restart: {wall_s: $ready, logged_ms: $logged}, queries: $queries}' >"$WORK/tidewatch.json"

log "DuckDB over the same Parquet files"
"$VENV/bin/python" "$ROOT/scripts/bench_sql.py" "$WORK" "$RUNS" "$THREADS" || status=1
exit $status
