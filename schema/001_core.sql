-- Core state: sources, files on disk, tracks (unique content), tags, and the per-item state of
-- every stage. Applied once; never edit after release (add a new numbered file instead).

CREATE TABLE sources (
    path        VARCHAR PRIMARY KEY,        -- absolute folder path as given (resolved)
    added_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per path ever seen under a source. Several paths may share one track (same bytes).
CREATE TABLE files (
    path          VARCHAR PRIMARY KEY,
    source        VARCHAR NOT NULL,
    size_bytes    BIGINT,
    mtime_ns      BIGINT,
    scan_error    VARCHAR,                  -- set when the scan itself could not stat the path
    present       BOOLEAN NOT NULL,         -- false once the path is gone from disk
    track_id      VARCHAR,                  -- content hash, once ingested
    first_seen_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    last_seen_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per distinct audio content.
CREATE TABLE tracks (
    track_id       VARCHAR PRIMARY KEY,     -- sha256 of the file bytes, hex
    size_bytes     BIGINT NOT NULL,
    container      VARCHAR NOT NULL,        -- WAV, FLAC, OGG, MP3, MP4, ...
    codec          VARCHAR NOT NULL,        -- PCM_16, VORBIS, OPUS, MPEG_LAYER_III, mp4a.40.2, ...
    duration_s     DOUBLE NOT NULL,
    frames         BIGINT,                  -- samples per channel, when the decoder knows
    sample_rate    INTEGER NOT NULL,
    channels       INTEGER NOT NULL,
    bit_rate_kbps  DOUBLE,                  -- average over the whole file (tags included)
    decode_checked BOOLEAN NOT NULL,        -- head and tail actually decoded (not only the header read)
    params_hash    VARCHAR NOT NULL,
    ingested_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE track_tags (
    track_id       VARCHAR PRIMARY KEY,
    tag_format     VARCHAR,                 -- id3, vorbis, mp4, none
    artist         VARCHAR,
    title          VARCHAR,
    album          VARCHAR,
    album_artist   VARCHAR,
    year           INTEGER,
    date_text      VARCHAR,
    genre          VARCHAR,
    track_number   INTEGER,
    track_total    INTEGER,
    disc_number    INTEGER,
    compilation    BOOLEAN NOT NULL,
    bpm_tag        DOUBLE,
    key_tag        VARCHAR,
    params_hash    VARCHAR NOT NULL,
    read_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The queue, the resume point and the audit trail: one row per (stage, item).
-- No index on status: DuckDB turns an UPDATE of an indexed column into delete + insert.
CREATE TABLE stage_items (
    stage        VARCHAR NOT NULL,
    item_id      VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,          -- pending | running | done | failed | skipped
    fingerprint  VARCHAR,                   -- hash(params_hash, input fingerprint) of the attempt
    params_hash  VARCHAR,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   VARCHAR,
    retryable    BOOLEAN,
    run_id       VARCHAR,
    elapsed_s    DOUBLE,
    claimed_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    PRIMARY KEY (stage, item_id)
);

CREATE TABLE runs (
    run_id      VARCHAR PRIMARY KEY,
    pid         INTEGER NOT NULL,
    host        VARCHAR NOT NULL,
    argv        VARCHAR,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome     VARCHAR                     -- finished | interrupted | error (null while running or killed)
);
