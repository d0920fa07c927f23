-- A track's separated stems are replaced as a whole (provided ones are the multitrack stage's).

-- name: clear_stems
DELETE FROM track_stems WHERE source = 'demucs' AND track_id IN (SELECT item_id FROM cleared);

-- name: insert_stems
INSERT INTO track_stems BY NAME SELECT *, $model AS model, $params_hash AS params_hash FROM new_stems;
