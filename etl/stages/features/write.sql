-- name: retire_features
-- Only when a crop is no longer cut: a re-run updates the groups it computed in place.
DELETE FROM crop_features WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: retire_stem_features
DELETE FROM crop_stem_features WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: drop_stale_stems
-- Stem features of stems the crop no longer has.
DELETE FROM crop_stem_features
WHERE crop_id IN (SELECT crop_id FROM feature_crops)
  AND (crop_id, stem) NOT IN (SELECT crop_id, stem FROM current_stems);

-- name: ensure_rows
INSERT INTO crop_features (crop_id, track_id) SELECT crop_id, track_id FROM feature_crops
ON CONFLICT (crop_id) DO NOTHING;

-- name: update_loudness
UPDATE crop_features SET loudness_hash = batch.group_hash,
    loudness_integrated_lufs = batch.loudness_integrated_lufs, loudness_range_lu = batch.loudness_range_lu,
    loudness_short_term_max_lufs = batch.loudness_short_term_max_lufs, true_peak_dbtp = batch.true_peak_dbtp,
    sample_peak_dbfs = batch.sample_peak_dbfs, rms_dbfs = batch.rms_dbfs,
    crest_factor_db = batch.crest_factor_db, clipping_ratio = batch.clipping_ratio
FROM batch WHERE crop_features.crop_id = batch.crop_id;

-- name: update_spectral
UPDATE crop_features SET spectral_hash = batch.group_hash,
    spectral_centroid_hz = batch.spectral_centroid_hz, spectral_bandwidth_hz = batch.spectral_bandwidth_hz,
    spectral_rolloff_hz = batch.spectral_rolloff_hz, spectral_flatness = batch.spectral_flatness,
    spectral_flux = batch.spectral_flux, zero_crossing_rate = batch.zero_crossing_rate,
    mfcc_mean = batch.mfcc_mean, band_bass_rms_dbfs = batch.band_bass_rms_dbfs,
    band_low_mid_rms_dbfs = batch.band_low_mid_rms_dbfs, band_mid_rms_dbfs = batch.band_mid_rms_dbfs,
    band_air_rms_dbfs = batch.band_air_rms_dbfs
FROM batch WHERE crop_features.crop_id = batch.crop_id;

-- name: update_tonal
UPDATE crop_features SET tonal_hash = batch.group_hash,
    chroma_mean = batch.chroma_mean, key_tonic = batch.key_tonic, key_mode = batch.key_mode,
    key_strength = batch.key_strength, key_name = batch.key_name, key_camelot = batch.key_camelot
FROM batch WHERE crop_features.crop_id = batch.crop_id;

-- name: update_rhythm
UPDATE crop_features SET rhythm_hash = batch.group_hash,
    bpm_grid = batch.bpm_grid, bpm_crop = batch.bpm_crop, bpm_relation = batch.bpm_relation,
    bpm_agrees = batch.bpm_agrees,
    onset_rate_hz = batch.onset_rate_hz, danceability = batch.danceability
FROM batch WHERE crop_features.crop_id = batch.crop_id;

-- name: update_series
UPDATE crop_features SET series_hash = batch.group_hash,
    series_loudness_lufs = batch.series_loudness_lufs, series_rms_dbfs = batch.series_rms_dbfs,
    series_centroid_hz = batch.series_centroid_hz
FROM batch WHERE crop_features.crop_id = batch.crop_id;

-- name: upsert_stems
INSERT INTO crop_stem_features (crop_id, stem, loudness_integrated_lufs, sample_peak_dbfs, rms_dbfs,
                                crest_factor_db, spectral_centroid_hz, spectral_flatness, band_bass_rms_dbfs,
                                band_low_mid_rms_dbfs, band_mid_rms_dbfs, band_air_rms_dbfs, params_hash)
SELECT crop_id, stem, loudness_integrated_lufs, sample_peak_dbfs, rms_dbfs, crest_factor_db,
       spectral_centroid_hz, spectral_flatness, band_bass_rms_dbfs, band_low_mid_rms_dbfs, band_mid_rms_dbfs,
       band_air_rms_dbfs, params_hash
FROM stem_features
ON CONFLICT (crop_id, stem) DO UPDATE SET
    loudness_integrated_lufs = excluded.loudness_integrated_lufs, sample_peak_dbfs = excluded.sample_peak_dbfs,
    rms_dbfs = excluded.rms_dbfs, crest_factor_db = excluded.crest_factor_db,
    spectral_centroid_hz = excluded.spectral_centroid_hz, spectral_flatness = excluded.spectral_flatness,
    band_bass_rms_dbfs = excluded.band_bass_rms_dbfs, band_low_mid_rms_dbfs = excluded.band_low_mid_rms_dbfs,
    band_mid_rms_dbfs = excluded.band_mid_rms_dbfs, band_air_rms_dbfs = excluded.band_air_rms_dbfs,
    params_hash = excluded.params_hash;
