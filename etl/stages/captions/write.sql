-- A caption item's row is its (crop, kind) row of crop_captions; item ids are `<crop_id>/<kind>`.

-- name: clear_captions
DELETE FROM crop_captions
WHERE crop_id || '/' || kind IN (SELECT item_id FROM cleared);

-- name: insert_captions
INSERT INTO crop_captions BY NAME SELECT *, $params_hash AS params_hash FROM new_captions;
