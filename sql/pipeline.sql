-- name: add_source
INSERT INTO sources (path) VALUES ($path) ON CONFLICT (path) DO NOTHING;

-- name: count_sources
SELECT count(*) FROM sources;

-- name: list_sources
SELECT path FROM sources ORDER BY path;

-- name: start_run
INSERT INTO runs (run_id, pid, host, argv, started_at)
VALUES ($run_id, $pid, $host, $argv, CAST($started_at AS TIMESTAMPTZ));

-- name: finish_run
UPDATE runs SET finished_at = now(), outcome = $outcome WHERE run_id = $run_id;

-- name: stored_data_dir
SELECT value FROM store_settings WHERE key = 'data_dir';

-- name: record_data_dir
INSERT INTO store_settings VALUES ('data_dir', $data_dir)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: forget_missing
-- Paths gone for longer than the grace period: forgotten. The stages then retire what hangs off
-- them (a track no other path holds, its beats, stems, crops and features, and their files).
DELETE FROM files
WHERE NOT present AND missing_since < now() - to_microseconds(CAST($grace_days * 86400e6 AS BIGINT))
RETURNING path;
