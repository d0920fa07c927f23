-- A track's stems are replaced as a whole.

-- name: clear_stems
DELETE FROM track_stems WHERE track_id IN (SELECT item_id FROM cleared);

-- name: insert_stems
INSERT INTO track_stems (track_id, stem, path, format, sample_rate, channels, frames, loudness_integrated_lufs,
                         sample_peak_dbfs, rms_dbfs, crest_factor_db, empty, folded_into, model, params_hash, sha256)
SELECT track_id, stem, path, format, sample_rate, channels, frames, loudness_integrated_lufs,
       sample_peak_dbfs, rms_dbfs, crest_factor_db, empty, folded_into, $model, $params_hash, sha256
FROM new_stems;
