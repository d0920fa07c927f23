-- A track's stems are replaced as a whole (a skip or failure with new parameters drops the old ones).

-- name: delete_replaced
DELETE FROM track_stems WHERE track_id IN (SELECT track_id FROM replaced);

-- name: insert_stems
INSERT INTO track_stems (track_id, stem, path, format, sample_rate, channels, frames, loudness_integrated_lufs,
                         sample_peak_dbfs, rms_dbfs, crest_factor_db, empty, folded_into, model, params_hash)
SELECT track_id, stem, path, format, sample_rate, channels, frames, loudness_integrated_lufs,
       sample_peak_dbfs, rms_dbfs, crest_factor_db, empty, folded_into, $model, $params_hash
FROM new_stems;
