-- Firing alerts resolve when their `endsAt` passes with no newer sighting, as in Alertmanager:
-- Prometheus sends every firing alert with an end a few evaluation intervals ahead and keeps
-- moving it, so an alert it stopped sending (a rule renamed, Prometheus gone) ends by itself.
-- The alert processor looks for such alerts every second; a partial index holds only the
-- firing alerts that have an end, so the look is cheap however many alerts are stored.
CREATE INDEX alerts_expiring ON alerts (ends_at) WHERE status = 'firing' AND ends_at IS NOT NULL;
