-- A track's crops are replaced as a whole: rows of other parameters go with the new ones in.

-- name: delete_features
-- Features of crops that the new set no longer has (same-id crops keep theirs).
DELETE FROM crop_features
WHERE track_id IN (SELECT track_id FROM replaced) AND crop_id NOT IN (SELECT crop_id FROM new_crops);

-- name: delete_stem_features
-- Features of stem crops that the new set no longer has.
DELETE FROM crop_stem_features
WHERE crop_id IN (SELECT crop_id FROM crops WHERE track_id IN (SELECT track_id FROM replaced))
  AND (crop_id, stem) NOT IN (SELECT crop_id, stem FROM new_crop_stems);

-- name: delete_stems
DELETE FROM crop_stems WHERE track_id IN (SELECT track_id FROM replaced);

-- name: delete_crops
DELETE FROM crops WHERE track_id IN (SELECT track_id FROM replaced);

-- name: insert_crops
INSERT INTO crops (crop_id, track_id, crop_index, mode, start_sample, end_sample, start_s, end_s, duration_s,
                   n_bars, n_beats, bpm, beat_times_s, beat_positions, downbeat_times_s, path, format,
                   sample_rate, channels, params_hash)
SELECT crop_id, track_id, crop_index, mode, start_sample, end_sample, start_s, end_s, duration_s,
       n_bars, n_beats, bpm, beat_times_s, beat_positions, downbeat_times_s, path, format,
       sample_rate, channels, $params_hash
FROM new_crops;

-- name: insert_stems
INSERT INTO crop_stems (crop_id, stem, track_id, path, format, sample_rate, channels, params_hash)
SELECT crop_id, stem, track_id, path, format, sample_rate, channels, $params_hash FROM new_crop_stems;
