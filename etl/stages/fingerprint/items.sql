-- Items of the fingerprint stage: every track; it reads what ingest made of it. A track whose files
-- are all gone is held (`present` false): its fingerprint and pairs stay.
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id, p.path IS NOT NULL AS present,
       p.path, p.source, t.duration_s
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
