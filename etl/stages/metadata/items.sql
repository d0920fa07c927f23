-- Items of the metadata stage: every track with a readable path; it reads what ingest made of it.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id, p.path
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
