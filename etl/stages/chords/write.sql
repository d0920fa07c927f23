-- A crop's chords and madmom key are replaced as a whole.

-- name: clear_chords
DELETE FROM crop_chords WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: insert_chords
INSERT INTO crop_chords BY NAME SELECT *, $params_hash AS params_hash FROM new_chords;
