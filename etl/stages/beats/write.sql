-- name: clear_grids
DELETE FROM beat_grids WHERE track_id IN (SELECT item_id FROM cleared);

-- name: insert_grids
INSERT INTO beat_grids (track_id, beat_times_s, beat_positions, downbeat_times_s, meter, bpm, bpm_confidence,
                        tempo_steady, pulse_strength, n_beats, n_bars, params_hash)
SELECT track_id, beat_times_s, beat_positions, downbeat_times_s, meter, bpm, bpm_confidence,
       tempo_steady, pulse_strength, n_beats, n_bars, $params_hash
FROM grids;
