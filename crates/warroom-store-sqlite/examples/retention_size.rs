//! How big the SQLite file gets with check history at steady state: 1,000 monitors checked
//! every 30 s, on day 90, under the default retention (raw 6 h, 5-minute rollups 7 days, hourly
//! rollups beyond 90 days). Fills exactly the rows retention keeps, through the real schema,
//! then checkpoints and reports the file size.
//!
//! ```text
//! cargo run --release -p warroom-store-sqlite --example retention_size -- [--monitors 1000] [--interval 30] [--days 90]
//! ```
#![allow(clippy::unwrap_used, missing_docs)]

use sqlx::{Executor, Row};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut monitors, mut interval, mut days) = (1000_i64, 30_i64, 90_i64);
    while let Some(a) = args.next() {
        let v: i64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number after each flag");
        match a.as_str() {
            "--monitors" => monitors = v,
            "--interval" => interval = v,
            "--days" => days = v,
            other => panic!("unknown flag {other}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("warroom-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warroom.db");
    let store = warroom_store_sqlite::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let pool = store.pool();
    let now: i64 = 1_800_000_000;
    let retention = warroom_store::Retention::default();
    let raw_rows = retention.raw.whole_seconds() / interval;
    let five_rows = retention.five_minutes.whole_seconds().min(days * 86400) / 300;
    let hour_rows = retention.hours.whole_seconds().min(days * 86400) / 3600;
    let t0 = std::time::Instant::now();
    for m in 0..monitors {
        let name = format!("monitor-{m:04}");
        let mut tx = pool.begin().await.unwrap();
        let mut sql = String::new();
        for chunk in (0..raw_rows).collect::<Vec<_>>().chunks(500) {
            sql.clear();
            sql.push_str("INSERT INTO check_results (monitor, at, ok, latency_ms) VALUES ");
            let vals: Vec<String> = chunk
                .iter()
                .map(|k| format!("('{name}', {}, 1, {})", now - k * interval, 20 + k % 50))
                .collect();
            sql.push_str(&vals.join(","));
            tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
                .await
                .unwrap();
        }
        for (g, rows) in [(300, five_rows), (3600, hour_rows)] {
            for chunk in (0..rows).collect::<Vec<_>>().chunks(500) {
                sql.clear();
                sql.push_str("INSERT INTO check_rollups (monitor, granularity, bucket, checks, failures, latency_sum_ms, latency_max_ms) VALUES ");
                let per = g / interval;
                let vals: Vec<String> = chunk
                    .iter()
                    .map(|k| {
                        format!(
                            "('{name}', {g}, {}, {per}, {}, {}, {})",
                            now - now % g - k * g,
                            k % 3,
                            per * 35,
                            400 + k % 90
                        )
                    })
                    .collect();
                sql.push_str(&vals.join(","));
                tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    pool.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
    let rows: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM check_results) + (SELECT COUNT(*) FROM check_rollups) AS n",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "monitors {monitors}, interval {interval} s, day {days}: {rows} rows ({raw_rows} raw, {five_rows} five-minute, {hour_rows} hourly per monitor), file {:.1} MB, filled in {:.0} s",
        size as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
}
