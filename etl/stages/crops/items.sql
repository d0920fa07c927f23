-- Items of the crops stage: every track (held while its files are all gone: `present` false). It
-- reads what ingest, beats and stems made of the track, and the multitrack stage's mix and provided
-- stems where it has them (the engine fingerprints those outputs). The payload carries the grid where one exists
-- (or why there is none), the track's stems, and its current crops, which `existing_crops` lets
-- the worker keep rather than recut when only stems were added. A track whose source provides its
-- stems is cut with those (separated ones beside them, [stems] separate_provided, are not cut);
-- `file` is what ingest recorded of a user's stem file, checked like the mix.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id, 'stems:' || t.track_id AS stems_key,
       p.path IS NOT NULL AS present,
       p.path, p.source, t.duration_s, t.sample_rate, t.channels, t.frames,
       b.beat_times_s, b.beat_positions, b.bpm,
       bs.status AS beats_status,
       bs.last_error AS beats_reason,
       st.stems, ec.existing_crops
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN stage_items AS bs ON bs.stage = 'beats' AND bs.item_id = t.track_id AND bs.status <> 'running'
LEFT JOIN (SELECT s.track_id,
                  list({'stem': s.stem, 'path': artifact_path(s.path), 'sample_rate': s.sample_rate,
                        'file': CASE WHEN f.path IS NOT NULL THEN
                                    {'path': f.path, 'size_bytes': f.ingested_size_bytes,
                                     'mtime_ns': f.ingested_mtime_ns, 'sample_hash': f.sample_hash} END}
                       ORDER BY s.stem) AS stems
           FROM track_stems AS s LEFT JOIN files AS f ON f.path = s.path
           WHERE s.path IS NOT NULL
             AND (s.source = 'provided' OR NOT EXISTS (SELECT 1 FROM track_stems AS o
                                                       WHERE o.track_id = s.track_id AND o.source = 'provided'))
           GROUP BY s.track_id) AS st USING (track_id)
LEFT JOIN (SELECT track_id, list({'crop_id': crop_id, 'path': artifact_path(path), 'sha256': sha256,
                                 'source_peak_dbfs': source_peak_dbfs}) AS existing_crops
           FROM crops GROUP BY track_id) AS ec USING (track_id)
