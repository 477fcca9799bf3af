-- Why a check failed (the runbook's kind: down, crashed, hung, ...; NULL when it succeeded), so
-- that a restarted process refills its monitors' sliding window, 5xx share included, from the
-- stored results instead of starting blind.
ALTER TABLE check_results ADD COLUMN failure TEXT;
