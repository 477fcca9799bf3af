#!/usr/bin/env python3
"""What SQLite itself takes to insert new alerts into warroom's `alerts` schema (migration 18:
key tables, triggers, partial indexes), with the rows made inside SQLite by a recursive CTE so
that no per-row binding is measured. A bound for the drain of the alert intake, not a result.

Usage: python3 bench/sqlite_ceiling.py [ROWS]   (default 1,000,000; transactions of 5,000)
"""
import os, sqlite3, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
migration = os.path.join(here, "..", "crates", "warroom-store-sqlite", "migrations", "0018_alert_keys.sql")
rows, batch = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, 5000
with tempfile.TemporaryDirectory() as d:
    db = sqlite3.connect(os.path.join(d, "ceiling.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # The columns migration 18 copies from; it then rebuilds the table with its indexes.
    db.execute("CREATE TABLE alerts (fingerprint TEXT, group_key TEXT, service TEXT, name TEXT, labels TEXT, "
               "annotations TEXT, status TEXT, starts_at TEXT, ends_at TEXT, generator_url TEXT, first_seen TEXT, "
               "last_seen TEXT, received BIGINT, incident BIGINT, pending BIGINT)")
    db.executescript(open(migration).read())
    t, done = time.time(), 0
    while done < rows:
        db.execute("BEGIN")
        db.execute("""WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i < ?)
            INSERT INTO alerts (fingerprint, group_key, service, name, labels, annotations, status, starts_at, ends_at,
                                generator_url, first_seen, last_seen, received, incident, pending)
            SELECT printf('%016x', (i * 2654435761) % 18446744073709551557), '{service="checkout"}', 'checkout',
                   'HighErrorRate',
                   '{"alertname":"HighErrorRate","instance":"host-' || i || '","service":"checkout","severity":"critical"}',
                   '{"summary":"error rate above 10% on host-' || i || '"}', 'firing', '2026-12-07T10:00:00.000Z',
                   '2026-12-07T10:05:00.000Z', 'http://prometheus/graph', '2026-12-07T10:00:00.000Z',
                   '2026-12-07T10:00:00.000Z', 1, 7, 0
            FROM s""", (done, done + batch - 1))
        db.execute("COMMIT")
        done += batch
    dt = time.time() - t
    print(f"{rows} rows in {dt:.2f} s = {rows / dt:,.0f} rows/s")
