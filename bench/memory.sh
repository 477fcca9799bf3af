#!/bin/bash
# Peak RSS of one server through a row of floods: batch c16, batch c64, single c16, batch c16.
# Prints requests/s, RSS and the intake waiting after each. Usage: bench/memory.sh BINARY
cd "$(dirname "$0")/.."; pkill -f "listen 127.0.0.1:18"; W=/tmp/wm; rm -rf $W; mkdir -p $W; B=$1; DB=sqlite://$W/w.db
T=$($B token create --role responder --name flood --database "$DB" 2>/dev/null)
RUST_LOG=error $B serve --database "$DB" --listen 127.0.0.1:18099 > $W/serve.log 2>&1 & P=$!; sleep 1
for spec in "100 16 8" "100 64 8" "1 16 5" "100 16 8"; do set -- $spec
R=$(BATCH=$1 FRESH=1 RUN=$RANDOM$2 TOKEN=$T wrk -t2 -c$2 -d$3s -s bench/wrk/alerts.lua http://127.0.0.1:18099 | awk '/Requests\/sec/{print $2}')
echo "b$1 c$2 req/s=$R $(grep -E 'VmHWM|VmRSS' /proc/$P/status | tr -s ' \t\n' ' ') waiting=$(curl -s 127.0.0.1:18099/metrics | grep '^warroom_alert_intake_waiting' | cut -d' ' -f2)"
done
kill $P; wait $P 2>/dev/null
