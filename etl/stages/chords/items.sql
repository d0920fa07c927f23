-- Items of the chords stage: every crop; it reads the crop file and the crop's beats (relative to its
-- start), both part of the crops stage's output.
SELECT c.crop_id AS item_id, NULL AS input_fp, c.track_id, artifact_path(c.path) AS path, c.sha256,
       c.beat_times_s
FROM crops AS c
