-- The source folders and the files under them, as `etl sources` shows and changes them.

-- name: list
SELECT s.path, s.added_at,
       count(f.path) FILTER (WHERE f.present) AS files,
       count(f.path) FILTER (WHERE NOT f.present) AS missing_files,
       count(DISTINCT f.track_id) FILTER (WHERE f.present) AS tracks
FROM sources AS s LEFT JOIN files AS f ON f.source = s.path
GROUP BY s.path, s.added_at
ORDER BY s.path;

-- name: add
INSERT INTO sources (path) VALUES ($path) ON CONFLICT (path) DO NOTHING;

-- name: mark_missing
-- The folder's files stop counting: they are missing from now on (their tracks leave the views,
-- their data stays until `etl gc` forgets them after [run] missing_grace_days).
UPDATE files SET present = false, missing_since = coalesce(missing_since, now()) WHERE source = $path;

-- name: remove
DELETE FROM sources WHERE path = $path;

-- name: files_under
SELECT path, size_bytes, mtime_ns, sample_hash FROM files WHERE source = $path ORDER BY path;

-- name: move_files
-- `moved` (old_path, path, ctime_ns, inode): the same file found at its new path. The row keeps
-- its track, hashes and stat version, so nothing downstream sees a change.
UPDATE files SET path = moved.path, source = $new, ctime_ns = moved.ctime_ns, inode = moved.inode,
                 present = true, missing_since = NULL, last_seen_at = now()
FROM moved WHERE files.path = moved.old_path;

-- name: move_source
-- Files not found at their new path stay where they were recorded, now under the new source: its
-- next scan marks them missing (and ingests whatever is at their new path).
UPDATE files SET source = $new WHERE source = $old;

-- name: forget_missing_tracks
-- `etl gc`: the tracks that only paths gone for longer than the grace period held. (The stages
-- then retire what hangs off them: beats, stems, crops, features and their files.)
DELETE FROM tracks
WHERE track_id IN (SELECT track_id FROM files WHERE NOT present AND missing_since < now() - to_microseconds(
                       CAST($grace_days * 86400e6 AS BIGINT)))
  AND NOT EXISTS (SELECT 1 FROM files AS f
                  WHERE f.track_id = tracks.track_id
                    AND (f.present OR f.missing_since >= now() - to_microseconds(CAST($grace_days * 86400e6 AS BIGINT))));

-- name: forget_missing_files
DELETE FROM files
WHERE NOT present AND missing_since < now() - to_microseconds(CAST($grace_days * 86400e6 AS BIGINT))
RETURNING path;
