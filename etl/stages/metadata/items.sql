-- Items of the metadata stage: every track. It reads the tags of the track's first present file,
-- so its input is that file's bytes (sha256, tags included): re-tagging re-runs this stage and
-- nothing else (the track id is a hash of the audio alone). A track whose files are all gone is
-- held (`present` false).
SELECT t.track_id AS item_id, p.sha256 AS input_fp, t.track_id, p.path IS NOT NULL AS present,
       p.path, p.source
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
