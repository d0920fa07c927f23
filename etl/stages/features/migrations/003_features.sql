-- Per-crop features in typed columns, one column set per feature group. Each group records the
-- hash of its own parameters, so enabling or changing one group recomputes only that group.

CREATE TABLE crop_features (
    crop_id                       VARCHAR PRIMARY KEY,
    track_id                      VARCHAR NOT NULL,
    -- loudness (pyloudnorm integrated; essentia EBU R128 range and short-term)
    loudness_hash                 VARCHAR,
    loudness_integrated_lufs      DOUBLE,
    loudness_range_lu             DOUBLE,
    loudness_short_term_max_lufs  DOUBLE,
    true_peak_dbtp                DOUBLE,      -- 4x oversampled
    sample_peak_dbfs              DOUBLE,
    rms_dbfs                      DOUBLE,
    crest_factor_db               DOUBLE,      -- sample peak over RMS
    clipping_ratio                DOUBLE,      -- share of samples at or above -0.01 dBFS
    -- spectral (librosa, one shared STFT; band RMS from Butterworth band-passes)
    spectral_hash                 VARCHAR,
    spectral_centroid_hz          DOUBLE,
    spectral_bandwidth_hz         DOUBLE,
    spectral_rolloff_hz           DOUBLE,      -- 85 % of the energy below
    spectral_flatness             DOUBLE,
    spectral_flux                 DOUBLE,      -- mean positive magnitude change per frame
    zero_crossing_rate            DOUBLE,      -- crossings per sample
    mfcc_mean                     FLOAT[],
    band_bass_rms_dbfs            DOUBLE,      -- 20-250 Hz
    band_low_mid_rms_dbfs         DOUBLE,      -- 250-2000 Hz
    band_mid_rms_dbfs             DOUBLE,      -- 2-8 kHz
    band_air_rms_dbfs             DOUBLE,      -- 8 kHz and up
    -- tonal (librosa chroma; essentia KeyExtractor)
    tonal_hash                    VARCHAR,
    chroma_mean                   FLOAT[],     -- 12 bins, C to B, peak = 1
    key_tonic                     VARCHAR,
    key_mode                      VARCHAR,     -- major | minor
    key_strength                  DOUBLE,
    key_name                      VARCHAR,     -- "F# minor"
    key_camelot                   VARCHAR,     -- "11A"
    -- rhythm (the track grid's BPM; essentia RhythmExtractor2013, Danceability; librosa onsets)
    rhythm_hash                   VARCHAR,
    bpm_grid                      DOUBLE,      -- the track's beat grid BPM, carried down
    bpm_crop                      DOUBLE,      -- the crop's own estimate
    bpm_agrees                    BOOLEAN,     -- within 4 % of each other
    onset_rate_hz                 DOUBLE,
    danceability                  DOUBLE,
    -- time series, resampled to a fixed number of steps per crop
    series_hash                   VARCHAR,
    series_loudness_lufs          FLOAT[],     -- EBU R128 momentary loudness
    series_rms_dbfs               FLOAT[],
    series_centroid_hz            FLOAT[]
);

-- Loudness and spectral stats of each stem crop.
CREATE TABLE crop_stem_features (
    crop_id                   VARCHAR NOT NULL,
    stem                      VARCHAR NOT NULL,
    loudness_integrated_lufs  DOUBLE,
    sample_peak_dbfs          DOUBLE,
    rms_dbfs                  DOUBLE,
    crest_factor_db           DOUBLE,
    spectral_centroid_hz      DOUBLE,
    spectral_flatness         DOUBLE,
    band_bass_rms_dbfs        DOUBLE,
    band_low_mid_rms_dbfs     DOUBLE,
    band_mid_rms_dbfs         DOUBLE,
    band_air_rms_dbfs         DOUBLE,
    params_hash               VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, stem)
);
