#!/usr/bin/env bash
# The domain and post-mortem crates are pure: no async runtime, no database, no HTTP.
# Fails if their normal dependency trees pull any of those in.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in warroom-domain warroom-postmortem; do
  tree=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}')
  for banned in tokio sqlx reqwest axum hyper; do
    if grep -qE "^${banned}( |-)" <<<"$tree"; then
      echo "dependency rule broken: $crate depends on $banned (cargo tree -p $crate -i $banned shows the path)" >&2
      status=1
    fi
  done
done
[ "$status" -eq 0 ] && echo "dependency rule: ok (warroom-domain and warroom-postmortem are pure)"
exit "$status"
