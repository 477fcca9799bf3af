#!/bin/bash
# How fast the alert intake drains into `alerts`: a flood of new alerts for SECONDS, then samples
# every 2 s (alerts waiting in the intake, bytes the server wrote, its CPU ticks, RSS, file sizes)
# until nothing waits. The drain rate after the flood is what bounds sustained new-alert
# ingestion once the intake is at its bound.
# Usage: bench/drain.sh BINARY [SECONDS] [BATCH] [CONNECTIONS]
cd "$(dirname "$0")/.."
B=$1; S=${2:-30}; BA=${3:-100}; C=${4:-16}; W=${WORK:-/tmp/warroom-drain}
rm -rf "$W"; mkdir -p "$W"; DB=sqlite://$W/w.db
T=$($B token create --role responder --name flood --database "$DB" 2>/dev/null)
RUST_LOG=error $B serve --database "$DB" --listen 127.0.0.1:18099 > "$W/serve.log" 2>&1 & P=$!
sleep 1
BATCH=$BA FRESH=1 TOKEN=$T wrk -t2 -c"$C" -d"${S}s" -s bench/wrk/alerts.lua http://127.0.0.1:18099 > "$W/wrk.txt" &
t=0
while :; do
  wt=$(curl -s 127.0.0.1:18099/metrics | awk '/^warroom_alert_intake_waiting /{print $2}')
  wb=$(awk '/^write_bytes/{print $2}' /proc/$P/io)
  echo "t=$t waiting=$wt written_MB=$((wb/1048576)) cpu_ticks=$(awk '{print $14+$15}' /proc/$P/stat) rss_kb=$(awk '/VmRSS/{print $2}' /proc/$P/status) db_MB=$(du -m "$W/w.db" | cut -f1) intake_MB=$(du -m "$W/w.db.intake" | cut -f1)"
  t=$((t+2)); sleep 2
  if [ $t -gt $((S+4)) ] && [ "${wt%.*}" = "0" ]; then break; fi
  if [ $t -gt 600 ]; then break; fi
done
grep Requests/sec "$W/wrk.txt"
echo "alerts stored: $(sqlite3 "$W/w.db" 'select count(*) from alerts')"
kill $P; wait $P 2>/dev/null
