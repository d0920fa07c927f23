-- Separated stems of each track (the stems stage, demucs): one row per stem of the model.

CREATE TABLE track_stems (
    track_id                  VARCHAR NOT NULL,
    stem                      VARCHAR NOT NULL,   -- drums, bass, other, vocals (the model's sources)
    path                      VARCHAR,            -- NULL when the stem was folded into another
    format                    VARCHAR NOT NULL,   -- flac | wav | mp3
    sample_rate               INTEGER NOT NULL,
    channels                  INTEGER NOT NULL,
    frames                    BIGINT NOT NULL,
    loudness_integrated_lufs  DOUBLE,             -- BS.1770-4; NULL for silence
    sample_peak_dbfs          DOUBLE,
    rms_dbfs                  DOUBLE,
    crest_factor_db           DOUBLE,             -- peak over RMS
    empty                     BOOLEAN NOT NULL,   -- effectively empty (the [stems] empty_* thresholds)
    folded_into               VARCHAR,            -- "other" when an empty stem was added to it
    model                     VARCHAR NOT NULL,
    params_hash               VARCHAR NOT NULL,
    created_at                TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (track_id, stem)
);
