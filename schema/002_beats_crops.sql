-- Beat grids (one per track) and beat-aligned crops (many per track), with room for stem crops.

CREATE TABLE beat_grids (
    track_id          VARCHAR PRIMARY KEY,
    beat_times_s      DOUBLE[] NOT NULL,    -- every beat, seconds from the start of the track
    beat_positions    TINYINT[] NOT NULL,   -- each beat's position in its bar (1 = downbeat)
    downbeat_times_s  DOUBLE[] NOT NULL,
    meter             INTEGER NOT NULL,     -- beats per bar (most common)
    bpm               DOUBLE NOT NULL,      -- 60 / median inter-beat interval
    bpm_confidence    DOUBLE NOT NULL,      -- share of inter-beat intervals within tolerance of the median
    tempo_steady      BOOLEAN NOT NULL,
    pulse_strength    DOUBLE NOT NULL,      -- mean network activation at the tracked beats (0..1)
    n_beats           INTEGER NOT NULL,
    n_bars            INTEGER NOT NULL,
    params_hash       VARCHAR NOT NULL,
    created_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE crops (
    crop_id            VARCHAR PRIMARY KEY, -- hash of track id, start sample and crop parameters
    track_id           VARCHAR NOT NULL,
    crop_index         INTEGER NOT NULL,    -- order within the track
    mode               VARCHAR NOT NULL,    -- beat-aligned | sequential
    start_sample       BIGINT NOT NULL,     -- in the source's sample rate
    end_sample         BIGINT NOT NULL,
    start_s            DOUBLE NOT NULL,
    end_s              DOUBLE NOT NULL,
    duration_s         DOUBLE NOT NULL,
    n_bars             INTEGER,             -- null without a beat grid
    n_beats            INTEGER NOT NULL,
    bpm                DOUBLE,
    beat_times_s       DOUBLE[] NOT NULL,   -- relative to the crop's start
    beat_positions     TINYINT[] NOT NULL,
    downbeat_times_s   DOUBLE[] NOT NULL,   -- relative to the crop's start
    path               VARCHAR NOT NULL,
    format             VARCHAR NOT NULL,    -- flac | wav | mp3
    sample_rate        INTEGER NOT NULL,    -- of the crop file
    channels           INTEGER NOT NULL,
    params_hash        VARCHAR NOT NULL,
    created_at         TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The same span of each separated stem, cut beside the mix crop.
CREATE TABLE crop_stems (
    crop_id      VARCHAR NOT NULL,
    stem         VARCHAR NOT NULL,            -- drums, bass, other, vocals, ...
    track_id     VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    format       VARCHAR NOT NULL,
    sample_rate  INTEGER NOT NULL,
    channels     INTEGER NOT NULL,
    params_hash  VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, stem)
);
