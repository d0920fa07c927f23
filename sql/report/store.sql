-- `etl report`: facts about the store and the crops it shows. <selected> is
-- `SELECT * FROM crops_v AS c WHERE (<--where>)`, the condition through the read-only gate first
-- (`true` without --where). The report's own parameters are named $report_*, so they never meet
-- the user's --param names.

-- name: columns
-- What crops_v holds in this store: later stages add their columns as they land.
SELECT column_name, column_type FROM (DESCRIBE crops_v)

-- name: select
-- The selected crops, read from crops_v once into a temporary table (in memory, gone with the
-- connection): every later statement reads it instead of joining the view again (2.5-3x faster on
-- 200,000 crops). <projection> leaves out the per-beat and per-frame number lists no chart shows.
CREATE TEMP TABLE report_selected AS
SELECT {projection} FROM crops_v AS c
WHERE ({where}
)

-- name: selected_columns
SELECT column_name, column_type FROM (DESCRIBE report_selected)

-- name: non_null
-- Per column, how many selected crops have a value: a section whose columns are all NULL is left out.
SELECT count(COLUMNS(*)) FROM ({selected})

-- name: selected_tracks
-- The tracks the report speaks of: every present track without --where, else those with a selected crop.
SELECT * FROM tracks_v
WHERE NOT $report_filtered OR track_id IN (SELECT track_id FROM ({selected}))

-- name: hours
-- Counts and hours of audio in the tracks, the selected crops, and the tracks' stems (files written;
-- folded stems have none) and stem crops.
WITH sel AS ({selected}),
     tracks AS ({selected_tracks}),
     stems AS (SELECT s.frames / s.sample_rate AS seconds
               FROM track_stems AS s JOIN tracks AS t USING (track_id) WHERE s.path IS NOT NULL)
SELECT (SELECT count(*) FROM tracks) AS tracks,
       (SELECT coalesce(sum(duration_s), 0) / 3600 FROM tracks) AS track_hours,
       (SELECT count(*) FROM sel) AS crops,
       (SELECT coalesce(sum(duration_s), 0) / 3600 FROM sel) AS crop_hours,
       (SELECT count(*) FROM stems) AS stems,
       (SELECT coalesce(sum(seconds), 0) / 3600 FROM stems) AS stem_hours,
       (SELECT count(*) FROM crop_stems JOIN sel USING (crop_id)) AS stem_crops

-- name: failures
-- Failed items by stage and reason (the whole store: a failed item has no crop to select). Paths in a
-- reason are folded to "…" so one cause is one row; `example` names one item it struck.
SELECT stage, regexp_replace(split_part(last_error, chr(10), 1), '/[^\s:,;]*', '…', 'g') AS reason,
       count(*) AS items, min(path) AS example
FROM failures_v
GROUP BY ALL
ORDER BY items DESC, stage, reason
LIMIT $report_top
