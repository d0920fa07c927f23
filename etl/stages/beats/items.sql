-- Items of the beats stage: every readable track; it reads what ingest made of it.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id,
       p.path, t.duration_s, t.sample_rate
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
