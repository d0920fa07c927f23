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
