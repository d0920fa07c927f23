-- Items of the beats stage: every readable track.
SELECT t.track_id AS item_id,
       t.track_id || ':' || t.params_hash AS input_fp,
       p.path, t.duration_s, t.sample_rate
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
