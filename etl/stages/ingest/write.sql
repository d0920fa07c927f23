-- name: upsert_tracks
-- Two paths with the same audio in one batch are one track.
INSERT INTO tracks (track_id, size_bytes, container, codec, duration_s, frames, sample_rate, channels,
                    bit_rate_kbps, decode_checked, identity, params_hash)
SELECT track_id, size_bytes, container, codec, duration_s, frames, sample_rate, channels,
       bit_rate_kbps, decode_checked, identity, $params_hash
FROM ingested
WHERE holds_track
QUALIFY row_number() OVER (PARTITION BY track_id ORDER BY path) = 1
ON CONFLICT (track_id) DO UPDATE SET
    size_bytes = excluded.size_bytes,
    container = excluded.container,
    codec = excluded.codec,
    duration_s = excluded.duration_s,
    frames = excluded.frames,
    sample_rate = excluded.sample_rate,
    channels = excluded.channels,
    bit_rate_kbps = excluded.bit_rate_kbps,
    decode_checked = excluded.decode_checked,
    identity = excluded.identity,
    params_hash = excluded.params_hash;

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
