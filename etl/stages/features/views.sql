-- The features stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
-- every feature column (the group hashes left out; the key is the chords stage's agreed one, with
-- essentia's as key_essentia)
features.* EXCLUDE (crop_id, track_id, loudness_hash, spectral_hash, tonal_hash, rhythm_hash, series_hash,
                    key_name, key_tonic, key_mode, key_camelot)

-- name: crops_v.join
LEFT JOIN crop_features AS features USING (crop_id)

-- name: export.long_lists
mfcc_mean, chroma_mean, series_loudness_lufs, series_rms_dbfs, series_centroid_hz
