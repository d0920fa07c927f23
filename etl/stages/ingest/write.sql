-- name: upsert_tracks
-- Two paths with the same bytes in one batch are one track.
INSERT INTO tracks (track_id, size_bytes, container, codec, duration_s, frames, sample_rate, channels,
                    bit_rate_kbps, decode_checked, params_hash)
SELECT track_id, size_bytes, container, codec, duration_s, frames, sample_rate, channels,
       bit_rate_kbps, decode_checked, $params_hash
FROM ingested
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
    params_hash = excluded.params_hash;

-- name: link_files
UPDATE files SET track_id = ingested.track_id FROM ingested WHERE files.path = ingested.path;

-- name: clear_orphaned_tracks
-- Before a path's new result (or its retirement): its track goes when no other path holds it.
-- (The write puts it back when the path still holds the same audio.)
DELETE FROM tracks
WHERE track_id IN (SELECT track_id FROM files WHERE path IN (SELECT item_id FROM cleared) AND track_id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM files AS other
                  WHERE other.track_id = tracks.track_id AND other.path NOT IN (SELECT item_id FROM cleared));

-- name: clear_links
UPDATE files SET track_id = NULL WHERE path IN (SELECT item_id FROM cleared) AND track_id IS NOT NULL;
