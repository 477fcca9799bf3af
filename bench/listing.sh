#!/bin/bash
# Listing firing alerts the way amtool and Grafana do, against one fresh server holding N
# firing alerts (10 services): GET /api/v2/alerts whole, and filtered to one service (a tenth),
# under wrk with 4 connections. Prints requests/s of each, the body size and peak RSS.
# BINARY `alertmanager` measures a fresh Prometheus Alertmanager (the Debian package) instead.
# Run the two alternately: the shared cores are noisy.
# Usage: bench/listing.sh BINARY [ALERTS] [SECONDS]
cd "$(dirname "$0")/.."
B=$1; N=${2:-10000}; S=${3:-10}; W=${WORK:-/tmp/warroom-listing}
rm -rf "$W"; mkdir -p "$W"
if [ "$B" = alertmanager ]; then
  printf 'route:\n  receiver: none\nreceivers:\n- name: none\n' > "$W/am.yml"
  prometheus-alertmanager --config.file="$W/am.yml" --storage.path="$W/am" \
    --web.listen-address=127.0.0.1:18098 --cluster.listen-address= > "$W/serve.log" 2>&1 & P=$!
  T=none
else
  DB=sqlite://$W/w.db
  T=$($B token create --role responder --name listing --database "$DB" 2>/dev/null)
  RUST_LOG=${LOG:-error} $B serve --database "$DB" --listen 127.0.0.1:18098 > "$W/serve.log" 2>&1 & P=$!
fi
for _ in $(seq 50); do curl -sf -o /dev/null 127.0.0.1:18098/-/ready || curl -sf -o /dev/null 127.0.0.1:18098/healthz && break; sleep 0.1; done
python3 - "$N" "$T" <<'PY'
import json, sys, urllib.request, datetime
n, token = int(sys.argv[1]), sys.argv[2]
end = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
for lo in range(0, n, 1000):
    body = [{"labels": {"alertname": "Load", "instance": f"host-{i}", "service": f"svc-{i % 10}", "severity": "warning"},
             "annotations": {"summary": f"load high on host-{i}"}, "endsAt": end} for i in range(lo, min(n, lo + 1000))]
    req = urllib.request.Request("http://127.0.0.1:18098/api/v2/alerts", json.dumps(body).encode(),
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    urllib.request.urlopen(req).read()
PY
H="Authorization: Bearer $T"
ALL=http://127.0.0.1:18098/api/v2/alerts
ONE="$ALL?filter=service%3D%22svc-3%22"
# warroom links the new alerts to incidents in the background: measure once that is done
# (the listing stops changing), so that it does not share the cores with the listing.
prev=; for _ in $(seq 60); do cur=$(curl -sf -H "$H" "$ALL" | md5sum); [ "$cur" = "$prev" ] && break; prev=$cur; sleep 0.5; done
listed=$(curl -sf -H "$H" "$ALL" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
bytes=$(curl -sf -H "$H" "$ALL" | wc -c)
all=$(wrk -t2 -c4 -d"${S}s" -H "$H" "$ALL" | awk '/Requests\/sec/{print $2}')
one=$(wrk -t2 -c4 -d"${S}s" -H "$H" "$ONE" | awk '/Requests\/sec/{print $2}')
echo "$(basename "$B") alerts=$listed body_bytes=$bytes all_req/s=$all one_service_req/s=$one $(grep VmHWM /proc/$P/status | tr -s ' \t' ' ')"
kill $P; wait $P 2>/dev/null
