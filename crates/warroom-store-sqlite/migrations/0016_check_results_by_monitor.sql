-- A monitor's latest results, for its current state in the monitors API (what Uptime Kuma users
-- look at first). Raw results are kept only for the retention period, so the index stays small.
CREATE INDEX check_results_by_monitor ON check_results (monitor, at);
