-- name: retire_features
-- Only when a crop is no longer cut: a re-run updates the groups it computed in place.
DELETE FROM crop_features WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: retire_stem_features
DELETE FROM crop_stem_features WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: drop_stale_stems
-- Stem features of stems the crop no longer has.
DELETE FROM crop_stem_features
WHERE crop_id IN (SELECT crop_id FROM feature_crops)
  AND (crop_id, stem) NOT IN (SELECT crop_id, stem FROM current_stems);

-- name: ensure_rows
INSERT INTO crop_features (crop_id, track_id) SELECT crop_id, track_id FROM feature_crops
ON CONFLICT (crop_id) DO NOTHING;

-- name: upsert_stems
INSERT OR REPLACE INTO crop_stem_features BY NAME SELECT * FROM stem_features;
