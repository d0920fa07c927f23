-- Items of the multitrack stage: one per group the scan recognised (etl/dsp/multitrack_layouts.py),
-- held while all its files are gone. Its input is each member's part in the group and its audio hash
-- (tags left out: re-tagging a stem recomputes nothing; a failed member reads '-'). It reads what
-- ingest made of the group's mix file, where it has one.
WITH members AS (
    SELECT f.multitrack_group AS group_id, f.path, f.present, f.multitrack_role AS role,
           f.multitrack_stem AS stem, f.multitrack_layout AS layout, f.audio_sha256, f.track_id,
           {'path': f.path, 'size_bytes': f.ingested_size_bytes, 'mtime_ns': f.ingested_mtime_ns,
            'sample_hash': f.sample_hash} AS source,
           si.status AS ingest_status, si.last_error AS ingest_error
    FROM files AS f
    LEFT JOIN stage_items AS si ON si.stage = 'ingest' AND si.item_id = f.path
    WHERE f.multitrack_group IS NOT NULL
)
SELECT group_id AS item_id,
       md5(string_agg(role || ':' || coalesce(stem, '') || ':' || path || ':' || coalesce(audio_sha256, '-'),
                      '|' ORDER BY path)) AS input_fp,
       bool_or(present) AS present,
       min(layout) AS layout,
       max(track_id) FILTER (WHERE role = 'mix') AS mix_track_id,
       list({'path': path, 'present': present, 'role': role, 'stem': stem, 'audio_sha256': audio_sha256,
             'track_id': track_id, 'source': source, 'ingest_status': ingest_status,
             'ingest_error': ingest_error} ORDER BY path) AS members
FROM members
GROUP BY group_id
