-- A claim remembers the status it took the item from, so that an item claimed but not finished
-- (Ctrl-C, SIGTERM, a killed run) goes back to exactly what it was: an item whose last result is
-- still current stays done instead of showing (and being re-run) as pending.
ALTER TABLE stage_items ADD COLUMN claimed_from VARCHAR;
