-- name: clear_grids
DELETE FROM beat_grids WHERE track_id IN (SELECT item_id FROM cleared);

-- name: insert_grids
INSERT INTO beat_grids BY NAME SELECT *, $params_hash AS params_hash FROM grids;
