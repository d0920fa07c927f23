-- Items of the metadata stage: every track with a readable path. Content never changes under a
-- track id, so the input changes only when ingest's parameters do.
SELECT t.track_id AS item_id,
       t.track_id || ':' || t.params_hash AS input_fp,
       p.path
FROM tracks AS t
JOIN track_paths_v AS p USING (track_id)
