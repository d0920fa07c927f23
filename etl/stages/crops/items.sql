-- Items of the crops stage: every track (held while its files are all gone: `present` false). It
-- reads what ingest, beats and stems made of the track (the engine fingerprints those outputs). The payload carries the grid where one exists
-- (or why there is none), the track's stems, and its current crops, which `existing_crops` lets
-- the worker keep rather than recut when only stems were added.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id, p.path IS NOT NULL AS present,
       p.path, p.source, t.duration_s, t.sample_rate, t.channels, t.frames,
       b.beat_times_s, b.beat_positions, b.bpm,
       bs.status AS beats_status,
       bs.last_error AS beats_reason,
       st.stems, ec.existing_crops
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN stage_items AS bs ON bs.stage = 'beats' AND bs.item_id = t.track_id AND bs.status <> 'running'
LEFT JOIN (SELECT track_id, list({'stem': stem, 'path': artifact_path(path), 'sample_rate': sample_rate} ORDER BY stem) AS stems
           FROM track_stems WHERE path IS NOT NULL GROUP BY track_id) AS st USING (track_id)
LEFT JOIN (SELECT track_id, list({'crop_id': crop_id, 'path': artifact_path(path), 'sha256': sha256,
                                 'source_peak_dbfs': source_peak_dbfs}) AS existing_crops
           FROM crops GROUP BY track_id) AS ec USING (track_id)
