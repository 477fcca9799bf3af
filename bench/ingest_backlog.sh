#!/bin/bash
# New-alert ingestion with the work after the 2xx counted: runs SECONDS of new alerts (after 2 s
# of repeats, so incidents and health exist), then reports the backlog when the load stops
# (pending rows plus the alerts waiting in the intake), how long the processor takes to catch
# up and at what rate, the process CPU per 1,000 alerts during the load and in total (load +
# catch-up), the bytes it wrote per alert stored, and its peak RSS. A load long enough to fill
# the intake (30 s at 16 connections) measures the drain that bounds sustained ingestion.
# Usage: bench/ingest_backlog.sh BINARY BATCH CONNECTIONS [SECONDS]
cd "$(dirname "$0")/.."
B=$1; S=${4:-5}; W=${WORK:-/tmp/warroom-backlog}; rm -rf "$W"; mkdir -p "$W"
DB=sqlite://$W/w.db; T=$($B token create --role responder --name b --database "$DB" 2>/dev/null)
RUST_LOG=${LOG:-error} $B serve --database "$DB" --listen 127.0.0.1:18193 > "${LOGFILE:-/dev/null}" 2>&1 & P=$!; sleep 1
BATCH=100 FRESH=0 TOKEN=$T wrk -t2 -c64 -d2s -s bench/wrk/alerts.lua http://127.0.0.1:18193 >/dev/null; sleep 2
cpu() { awk '{print $14+$15}' /proc/$P/stat; }
written() { awk '/^write_bytes/{print $2}' /proc/$P/io; }
stored() { python3 -c "import sqlite3;print(sqlite3.connect('$W/w.db').execute('select count(*) from alerts').fetchone()[0])"; }
# Pending: alerts marked pending, plus what the server says waits in its intake (builds that
# have one; merged intake rows are deleted later, so the intake file's rows overcount).
pend() {
  local rows waiting
  rows=$(python3 -c "import sqlite3;print(sqlite3.connect('$W/w.db').execute('select count(*) from alerts where pending=1').fetchone()[0])")
  waiting=$(curl -s 127.0.0.1:18193/metrics | awk '/^warroom_alert_intake_waiting /{print int($2)}')
  echo $((rows + ${waiting:-0}))
}
c0=$(cpu); w0=$(written); n0=$(stored)
R=$(BATCH=$2 FRESH=1 TOKEN=$T wrk -t2 -c$3 -d${S}s -s bench/wrk/alerts.lua http://127.0.0.1:18193 | awk '/Requests\/sec/{print $2}')
c1=$(cpu)
p1=$(pend); t0=$(date +%s.%N)
while [ "$(pend)" != 0 ] && python3 -c "import sys,time;sys.exit(time.time()-$t0>600)"; do sleep 0.5; done
t=$(python3 -c "import time;print(round(time.time()-$t0,1))")
c2=$(cpu); w2=$(written); n=$(stored)
echo "$(basename $B) batch=$2 c=$3 seconds=$S alerts/s=$(python3 -c "print(round($R*$2))") pending_at_end=$p1 catchup_s=$t drain_alerts_per_s=$(python3 -c "print(round($p1/max($t,0.1)))") cpu_ms_per_1000_during=$(python3 -c "print(round(($c1-$c0)*10/($R*$2*$S)*1000,1))") cpu_ms_per_1000_total=$(python3 -c "print(round(($c2-$c0)*10/($n-$n0)*1000,1))") written_kb_per_alert=$(python3 -c "print(round(($w2-$w0)/1024/($n-$n0),2))") peak_rss_mb=$(awk '/VmHWM/{print int($2/1024)}' /proc/$P/status)"
kill $P; wait $P 2>/dev/null
