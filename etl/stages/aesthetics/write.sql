-- A crop's scores are replaced as a whole.

-- name: clear_scores
DELETE FROM crop_aesthetics WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: insert_scores
INSERT INTO crop_aesthetics BY NAME SELECT *, $params_hash AS params_hash FROM new_scores;
