#!/bin/bash
# New-alert ingestion with the work after the 2xx counted: runs 5 s of new alerts (after 2 s of
# repeats, so incidents and health exist), then reports the pending backlog when the load stops
# (pending rows and the intake's), how long the processor takes to catch up, and the process
# CPU per 1,000 alerts during the load and in total (load + catch-up).
# Usage: bench/ingest_backlog.sh BINARY BATCH CONNECTIONS
cd "$(dirname "$0")/.."
B=$1; rm -rf ${WORK:-/tmp/warroom-backlog}; mkdir -p ${WORK:-/tmp/warroom-backlog}
DB=sqlite://${WORK:-/tmp/warroom-backlog}/w.db; T=$($B token create --role responder --name b --database $DB 2>/dev/null)
RUST_LOG=error $B serve --database $DB --listen 127.0.0.1:18193 > /dev/null 2>&1 & P=$!; sleep 1
BATCH=100 FRESH=0 TOKEN=$T wrk -t2 -c64 -d2s -s bench/wrk/alerts.lua http://127.0.0.1:18193 >/dev/null; sleep 2
cpu() { awk '{print $14+$15}' /proc/$P/stat; }
c0=$(cpu)
R=$(BATCH=$2 FRESH=1 TOKEN=$T wrk -t2 -c$3 -d5s -s bench/wrk/alerts.lua http://127.0.0.1:18193 | awk '/Requests\/sec/{print $2}')
c1=$(cpu)
# Pending: alerts marked pending, plus those still in the intake (builds that have one).
pend() { python3 - "${WORK:-/tmp/warroom-backlog}/w.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = c.execute("select count(*) from alerts where pending=1").fetchone()[0]
try:
    n += c.execute("select coalesce(sum(alerts), 0) from alert_intake").fetchone()[0]
except sqlite3.OperationalError:
    pass
print(n)
PY
}
p1=$(pend); t=0
while [ "$(pend)" != 0 ] && [ $t -lt 120 ]; do sleep 1; t=$((t+1)); done
c2=$(cpu); n=$(python3 -c "import sqlite3;print(sqlite3.connect('${WORK:-/tmp/warroom-backlog}/w.db').execute('select count(*) from alerts').fetchone()[0])")
echo "$(basename $B) batch=$2 c=$3 alerts/s=$(python3 -c "print(round($R*$2))") pending_at_end=$p1 catchup_s=$t cpu_ms_per_1000_during=$(python3 -c "print(round(($c1-$c0)*10/($R*$2*5)*1000,1))") cpu_ms_per_1000_total=$(python3 -c "print(round(($c2-$c0)*10/($n-100)*1000,1))")"
kill $P; wait $P 2>/dev/null
