-- Items of the aesthetics stage: every crop; it reads the crop file (its content hash is the crop's output).
SELECT c.crop_id AS item_id, NULL AS input_fp, c.track_id, artifact_path(c.path) AS path, c.sha256
FROM crops AS c
