-- Items of the stems stage: every track that can be read now; it reads what ingest made of it.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id,
       p.path, t.duration_s, t.sample_rate, t.channels, t.frames
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
