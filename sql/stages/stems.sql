-- Items of the stems stage: every track that can be read now. Its input changes with the track's
-- ingest parameters (a file changed in place is a new track).
SELECT t.track_id AS item_id,
       t.track_id || ':' || t.params_hash AS input_fp,
       p.path, t.duration_s, t.sample_rate, t.channels, t.frames
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
