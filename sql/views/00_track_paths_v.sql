-- Where each track can be read now: its first present path (several paths may hold the same bytes).
CREATE OR REPLACE VIEW track_paths_v AS
SELECT track_id, min(path) AS path, count(*) AS n_paths
FROM files
WHERE present AND track_id IS NOT NULL
GROUP BY track_id
