-- A track's crops are replaced as a whole (the engine clears them before a new result goes in).
-- Features of crops that are no longer cut are retired by the features stage.

-- name: clear_stems
DELETE FROM crop_stems WHERE track_id IN (SELECT item_id FROM cleared);

-- name: clear_crops
DELETE FROM crops WHERE track_id IN (SELECT item_id FROM cleared);

-- name: insert_crops
INSERT INTO crops BY NAME SELECT *, $params_hash AS params_hash FROM new_crops;

-- name: insert_stems
INSERT INTO crop_stems BY NAME SELECT *, $params_hash AS params_hash FROM new_crop_stems;
