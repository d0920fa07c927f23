-- Multitrack sources (etl/stages/ingest/multitrack.py, etl/stages/multitrack/): a folder (or one
-- NI Stems file) holding a song's stems. The scan records which group each file belongs to; the
-- multitrack stage turns a group into one track (the mix: a file, or the sum of the stems rendered
-- once) and records its stems as provided.

-- Group membership, set by the scan from file names alone (no audio read). NULL: a plain file.
ALTER TABLE files ADD COLUMN multitrack_group VARCHAR;   -- the group's id (its folder, or the NI file)
ALTER TABLE files ADD COLUMN multitrack_role VARCHAR;    -- mix | stem | streams (an NI Stems file)
ALTER TABLE files ADD COLUMN multitrack_stem VARCHAR;    -- the stem's name as the layout gives it
ALTER TABLE files ADD COLUMN multitrack_layout VARCHAR;  -- musdb | fretsonfire | ni-stems | a rule's name
-- The file's audio hash (etl/dsp/identity.py) also where the file holds no track of its own (a stem).
ALTER TABLE files ADD COLUMN audio_sha256 VARCHAR;

-- One row per multitrack group that became a track.
CREATE TABLE multitrack_groups (
    group_id          VARCHAR PRIMARY KEY,
    track_id          VARCHAR NOT NULL,
    layout            VARCHAR NOT NULL,
    mix               VARCHAR NOT NULL,    -- file | sum | streams
    mix_path          VARCHAR,             -- a rendered mix (relative to the data folder); NULL: the mix is a file
    mix_sha256        VARCHAR,
    mix_sample_hash   VARCHAR,             -- what the reading stages check the rendered file against
    mix_size_bytes    BIGINT,
    mix_mtime_ns      BIGINT,
    tags_path         VARCHAR,             -- the member file whose tags stand for the track's
    n_stems           INTEGER NOT NULL,
    note              VARCHAR,             -- what rendering had to do (clipping, resampling)
    params_hash       VARCHAR NOT NULL,
    created_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- track_stems: provided stems beside separated ones. The primary key gains `source`, so a track can
-- hold demucs's stems beside the provided ones ([stems] separate_provided).
CREATE TABLE track_stems_017 (
    track_id                  VARCHAR NOT NULL,
    stem                      VARCHAR NOT NULL,   -- drums, bass, other, vocals; provided: guitar, piano, ... as given
    path                      VARCHAR,            -- NULL when folded; provided: the user's file (absolute) or a rendering
    format                    VARCHAR NOT NULL,
    sample_rate               INTEGER NOT NULL,
    channels                  INTEGER NOT NULL,
    frames                    BIGINT NOT NULL,
    loudness_integrated_lufs  DOUBLE,
    sample_peak_dbfs          DOUBLE,
    rms_dbfs                  DOUBLE,
    crest_factor_db           DOUBLE,
    empty                     BOOLEAN NOT NULL,
    folded_into               VARCHAR,
    model                     VARCHAR NOT NULL,   -- demucs's model; provided: the layout
    params_hash               VARCHAR NOT NULL,
    created_at                TIMESTAMP NOT NULL DEFAULT current_timestamp,
    sha256                    VARCHAR,
    source                    VARCHAR NOT NULL DEFAULT 'demucs',  -- provided | demucs
    given_as                  VARCHAR,            -- provided: the source's own name(s) for it (song, rhythm+keys)
    alignment                 VARCHAR,            -- provided: how it lines up with the mix (NULL: sample-exact)
    sdr_db                    DOUBLE,             -- demucs beside provided: SDR against the provided stem
    PRIMARY KEY (track_id, stem, source)
);
INSERT INTO track_stems_017 BY NAME SELECT * FROM track_stems;
DROP TABLE track_stems;
ALTER TABLE track_stems_017 RENAME TO track_stems;
