-- A synthetic feature store for bench/query.py: $tracks tracks of $crops_per_track crops each,
-- ~400 genre labels, every crops_v column filled with plausible values (time series left empty,
-- as with the series group off, to keep the file near 1 GB). Deterministic: hash-based values.

-- name: tracks
INSERT INTO tracks
SELECT 'trk' || lpad(CAST(i AS VARCHAR), 8, '0'), 8000000, 'FLAC', 'FLAC', 240 + (hash(i) % 120), NULL,
       44100, 2, 900, true, 'bench', now(), 'flac-frames'
FROM range($tracks) t(i);

-- name: files
INSERT INTO files (path, source, size_bytes, mtime_ns, present, track_id)
SELECT '/music/library/artist ' || (i % 5000) || '/album ' || (i % 20000) || '/' || i || '.flac', '/music/library',
       8000000, 0, true, 'trk' || lpad(CAST(i AS VARCHAR), 8, '0')
FROM range($tracks) t(i);

-- name: track_tags
INSERT INTO track_tags (track_id, tag_format, artist, title, album, album_artist, year, genre, track_number,
                        compilation, params_hash)
SELECT 'trk' || lpad(CAST(i AS VARCHAR), 8, '0'), 'vorbis', 'artist ' || (i % 5000), 'title ' || i,
       'album ' || (i % 20000), NULL, 1970 + (i % 55),
       (['house', 'deep house', 'techno', 'ambient', 'jazz', 'rock', 'hip hop', 'drum and bass'])[CAST(1 + hash(i) % 8 AS BIGINT)]
           || CASE WHEN hash(i * 7) % 50 = 0 THEN '' ELSE ' ' || (hash(i * 7) % 50) END,
       1 + i % 12, false, 'bench'
FROM range($tracks) t(i);

-- name: beat_grids
INSERT INTO beat_grids
SELECT 'trk' || lpad(CAST(i AS VARCHAR), 8, '0'), [0.5, 1.0, 1.5, 2.0], [1, 2, 3, 4], [0.5], 4,
       80 + (hash(i) % 9000) / 100.0, 0.9, true, 0.6, 480, 120, 'bench', now(), 'fit'
FROM range($tracks) t(i);

-- name: crops
INSERT INTO crops
SELECT 'crop' || lpad(CAST(n AS VARCHAR), 10, '0'), 'trk' || lpad(CAST(n // $crops_per_track AS VARCHAR), 8, '0'),
       n % $crops_per_track, 'beat-aligned', (n % $crops_per_track) * 705600, (n % $crops_per_track + 1) * 705600,
       (n % $crops_per_track) * 16.0, (n % $crops_per_track + 1) * 16.0, 16.0, 8, 32, 120.0,
       [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], [1, 2, 3, 4, 1, 2, 3, 4], [0.0, 2.0],
       'crops/tr/trk' || lpad(CAST(n // $crops_per_track AS VARCHAR), 8, '0') || '/crop' || n || '.flac', 'flac',
       44100, 2, 'bench', now(),
       sha256('crop' || n), 'fit', -1.0, false
FROM range($tracks * $crops_per_track) t(n);

-- name: crop_features
INSERT INTO crop_features (crop_id, track_id, loudness_hash, loudness_integrated_lufs, loudness_range_lu,
    loudness_short_term_max_lufs, true_peak_dbtp, sample_peak_dbfs, rms_dbfs, crest_factor_db, clipping_ratio,
    spectral_hash, spectral_centroid_hz, spectral_bandwidth_hz, spectral_rolloff_hz, spectral_flatness,
    spectral_flux, zero_crossing_rate, mfcc_mean, band_bass_rms_dbfs, band_low_mid_rms_dbfs, band_mid_rms_dbfs,
    band_air_rms_dbfs, tonal_hash, chroma_mean, key_tonic, key_mode, key_strength, key_name, key_camelot,
    rhythm_hash, bpm_grid, bpm_crop, bpm_agrees, onset_rate_hz, danceability)
SELECT 'crop' || lpad(CAST(n AS VARCHAR), 10, '0'), 'trk' || lpad(CAST(n // $crops_per_track AS VARCHAR), 8, '0'),
       'bench', -30 + (hash(n) % 2500) / 100.0, 5.0, -8.0, -0.5, -0.6, -14.0, 13.4, 0.0,
       'bench', 1000 + hash(n) % 3000, 2000.0, 5000.0, 0.05, 1.2, 0.04,
       [-200.0, 100.0, 10.0, 5.0, 1.0, 0.5, 0.1, 0.0, -0.1, -0.5, -1.0, 2.0, 3.0]::FLOAT[], -20.0, -18.0, -25.0, -40.0,
       'bench', [1.0, 0.2, 0.3, 0.1, 0.5, 0.2, 0.1, 0.6, 0.2, 0.3, 0.1, 0.2]::FLOAT[],
       (['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'])[CAST(1 + hash(n * 3) % 12 AS BIGINT)],
       (['major', 'minor'])[CAST(1 + hash(n * 5) % 2 AS BIGINT)], 0.7,
       (['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'])[CAST(1 + hash(n * 3) % 12 AS BIGINT)] || ' '
           || (['major', 'minor'])[CAST(1 + hash(n * 5) % 2 AS BIGINT)],
       '1A', 'bench', 120.0, 120.0 + hash(n) % 5, true, 3.5, 1.2
FROM range($tracks * $crops_per_track) t(n);
