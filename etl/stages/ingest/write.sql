-- name: upsert_tracks
-- Two paths with the same audio in one batch are one track. `ingested` is shaped like `tracks` (less
-- what the database fills), with the file's own columns appended (the stage's write).
INSERT OR REPLACE INTO tracks BY NAME
SELECT * EXCLUDE (path, sha256, sample_hash, mtime_ns, holds_track), $params_hash AS params_hash
FROM ingested
WHERE holds_track
QUALIFY row_number() OVER (PARTITION BY track_id ORDER BY path) = 1;

-- name: link_files
-- What the stages after ingest check the file against before reading it (etl/dsp/sourcefile.py).
UPDATE files SET track_id = CASE WHEN ingested.holds_track THEN ingested.track_id END,
                 audio_sha256 = ingested.track_id,
                 sha256 = ingested.sha256,
                 sample_hash = ingested.sample_hash,
                 ingested_size_bytes = ingested.size_bytes,
                 ingested_mtime_ns = ingested.mtime_ns
FROM ingested WHERE files.path = ingested.path;

-- name: clear_orphaned_tracks
-- Before a path's new result (or its retirement): its track goes when no other path holds it.
-- (The write puts it back when the path still holds the same audio.)
DELETE FROM tracks
WHERE track_id IN (SELECT track_id FROM files WHERE path IN (SELECT item_id FROM cleared) AND track_id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM files AS other
                  WHERE other.track_id = tracks.track_id AND other.path NOT IN (SELECT item_id FROM cleared));

-- name: clear_links
UPDATE files SET track_id = NULL, audio_sha256 = NULL, sha256 = NULL, sample_hash = NULL,
                 ingested_size_bytes = NULL, ingested_mtime_ns = NULL
WHERE path IN (SELECT item_id FROM cleared) AND (track_id IS NOT NULL OR audio_sha256 IS NOT NULL);
