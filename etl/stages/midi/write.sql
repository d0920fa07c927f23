-- An item's MIDI summary and notes are replaced as a whole (item id: `<crop_id>.<source>`).

-- name: clear_midi
DELETE FROM crop_midi WHERE crop_id || '.' || source IN (SELECT item_id FROM cleared);

-- name: clear_notes
DELETE FROM crop_midi_notes WHERE crop_id || '.' || source IN (SELECT item_id FROM cleared);

-- name: insert_midi
INSERT INTO crop_midi BY NAME SELECT *, $params_hash AS params_hash FROM new_midi;

-- name: insert_notes
INSERT INTO crop_midi_notes BY NAME SELECT * FROM new_notes;
