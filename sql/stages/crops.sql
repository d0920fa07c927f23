-- Items of the crops stage: every readable track, with its beat grid where one exists. The input
-- changes with ingest's parameters and with the beats stage's outcome for the track (a grid made,
-- remade or skipped), so new grids recut exactly the affected tracks; and with the track's stems (once
-- the stems stage has made them), whose crops are then cut beside the existing mix crops, which
-- `existing_crops` lets the worker keep rather than recut.
SELECT t.track_id AS item_id,
       t.track_id || ':' || t.params_hash || ':' || coalesce(bs.status || ':' || bs.fingerprint, 'no beats')
           || coalesce(':stems ' || st.stems_fp, '') AS input_fp,
       p.path, t.duration_s, t.sample_rate, t.channels, t.frames,
       b.beat_times_s, b.beat_positions, b.bpm,
       bs.status AS beats_status,
       bs.last_error AS beats_reason,
       st.stems, ec.existing_crops
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN stage_items AS bs ON bs.stage = 'beats' AND bs.item_id = t.track_id AND bs.status <> 'running'
LEFT JOIN (SELECT track_id, list({'stem': stem, 'path': path, 'sample_rate': sample_rate} ORDER BY stem) AS stems,
                  string_agg(stem || '@' || params_hash, ',' ORDER BY stem) AS stems_fp
           FROM track_stems WHERE path IS NOT NULL GROUP BY track_id) AS st USING (track_id)
LEFT JOIN (SELECT track_id, list({'crop_id': crop_id, 'path': path}) AS existing_crops
           FROM crops GROUP BY track_id) AS ec USING (track_id)
