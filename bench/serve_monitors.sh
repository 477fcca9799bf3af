#!/bin/bash
# Steady state of `warroom serve` itself with N HTTP monitors (default 10,000) at a 30 s interval
# against a local target: the whole process (scheduler, sliding windows, degradation checks,
# check results stored once a second, health), not the prober alone. Reports the process's CPU
# as a share of one core, peak RSS, and the scheduling drift quantiles from /metrics after
# SECONDS (default 120; the first interval, while monitors start on their phases, is excluded
# from the CPU figure).
# Usage: bench/serve_monitors.sh BINARY [MONITORS] [SECONDS]
set -e
cd "$(dirname "$0")/.."
B=$1; N=${2:-10000}; S=${3:-120}
W=${WORK:-/tmp/warroom-serve-monitors}; rm -rf $W; mkdir -p $W
cargo build -q --release -p warroom-worker --example probe_bench
target/release/examples/probe_bench --serve > $W/target.addr & T=$!
sleep 0.5; ADDR=$(head -1 $W/target.addr)
python3 - "$N" "$ADDR" > $W/w.toml <<'PY'
import sys
n, addr = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(f'[[monitors]]\nid = "m{i}"\nservice = "svc-{i % 100}"\ninterval_secs = 30\ntimeout_ms = 2000\n[monitors.check]\nkind = "http"\nurl = "http://{addr}/health"\n')
PY
DB=sqlite://$W/w.db
RUST_LOG=error $B serve --database $DB --config $W/w.toml --listen 127.0.0.1:18197 > $W/log 2>&1 & P=$!
cpu() { awk '{print $14+$15}' /proc/$P/stat; }
sleep 30; c0=$(cpu); t0=$(date +%s.%N)
sleep $((S - 30)); c1=$(cpu); t1=$(date +%s.%N)
M=$(curl -s http://127.0.0.1:18197/metrics)
echo "monitors=$N seconds=$S cpu_share_of_one_core=$(python3 -c "print(round(($c1-$c0)/100/($t1-$t0)*100,1))")% peak_rss=$(awk '/VmHWM/{print $2/1024}' /proc/$P/status)MB checks_total=$(echo "$M" | awk '/^warroom_checks_total /{print $2}')"
echo "$M" | grep -E '^warroom_check_drift_seconds\{quantile' || true
kill $P $T; wait $P 2>/dev/null || true
