#!/bin/bash
# A flood of alerts into one fresh server: prints requests/s, alerts/s, the server's CPU ticks
# during the load and its peak RSS. Run builds alternately: the shared cores are noisy.
# BINARY `alertmanager` floods a fresh Prometheus Alertmanager instead (the Debian package), with
# the same wrk script, so that each server can be measured alone: with several servers on two
# cores, a warroom server keeps merging its intake while the others are measured.
# Usage: bench/flood.sh BINARY [SECONDS] [BATCH] [CONNECTIONS]   (env FRESH=0 for repeats)
cd "$(dirname "$0")/.."
B=$1; S=${2:-10}; BA=${3:-100}; C=${4:-16}; W=${WORK:-/tmp/warroom-flood}
rm -rf "$W"; mkdir -p "$W"
if [ "$B" = alertmanager ]; then
  printf 'route:\n  receiver: none\nreceivers:\n- name: none\n' > "$W/am.yml"
  prometheus-alertmanager --config.file="$W/am.yml" --storage.path="$W/am" \
    --web.listen-address=127.0.0.1:18099 --cluster.listen-address= > "$W/serve.log" 2>&1 & P=$!
  T=
else
  DB=sqlite://$W/w.db
  T=$($B token create --role responder --name flood --database "$DB" 2>/dev/null)
  RUST_LOG=${LOG:-error} $B serve --database "$DB" --listen 127.0.0.1:18099 > "$W/serve.log" 2>&1 & P=$!
fi
for _ in $(seq 50); do curl -sf -o /dev/null 127.0.0.1:18099/-/ready || curl -sf -o /dev/null 127.0.0.1:18099/healthz && break; sleep 0.1; done
sleep 0.5
c0=$(awk '{print $14+$15}' /proc/$P/stat)
R=$(BATCH=$BA FRESH=${FRESH:-1} TOKEN=$T wrk -t2 -c"$C" -d"${S}s" -s bench/wrk/alerts.lua http://127.0.0.1:18099 | awk '/Requests\/sec/{print $2}')
c1=$(awk '{print $14+$15}' /proc/$P/stat)
echo "$(basename "$B") req/s=$R alerts/s=$(python3 -c "print(round($R*$BA))") cpu_ticks=$((c1-c0)) $(grep VmHWM /proc/$P/status | tr -s ' \t' ' ')"
kill $P; wait $P 2>/dev/null
