-- Items of the crops stage: every readable track, with its beat grid where one exists. The input
-- changes with ingest's parameters and with the beats stage's outcome for the track (a grid made,
-- remade or skipped), so new grids recut exactly the affected tracks.
SELECT t.track_id AS item_id,
       t.track_id || ':' || t.params_hash || ':' || coalesce(bs.status || ':' || bs.fingerprint, 'no beats')
           AS input_fp,
       p.path, t.duration_s, t.sample_rate, t.channels, t.frames,
       b.beat_times_s, b.beat_positions, b.bpm,
       bs.status AS beats_status,
       bs.last_error AS beats_reason
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN stage_items AS bs ON bs.stage = 'beats' AND bs.item_id = t.track_id AND bs.status <> 'running'
