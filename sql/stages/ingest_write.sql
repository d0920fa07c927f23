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

-- name: unlink_files
UPDATE files SET track_id = NULL WHERE path IN (SELECT path FROM unusable);
