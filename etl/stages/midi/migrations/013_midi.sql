-- midi (per crop and source): basic-pitch's notes. `crop_midi`: one row per (crop, source), source
-- 'mix' or a stem name, with the MIDI file (tempo map from the crop's beats) and note statistics,
-- NULL where there are no notes to measure. `crop_midi_notes`: every note, a row each: filtering and
-- aggregating notes across crops is faster on a flat table than on a list column (bench/midi_layout.py).
CREATE TABLE crop_midi (
    crop_id                VARCHAR NOT NULL,
    source                 VARCHAR NOT NULL,   -- mix | bass | other | vocals | ...
    track_id               VARCHAR NOT NULL,
    path                   VARCHAR NOT NULL,   -- the .mid file, relative to the data folder
    sha256                 VARCHAR NOT NULL,
    n_notes                INTEGER NOT NULL,
    pitch_min              UTINYINT,           -- MIDI numbers
    pitch_max              UTINYINT,
    mean_polyphony         DOUBLE,             -- notes sounding at once, averaged over the time any sounds
    note_density_per_s     DOUBLE,             -- notes per second of the crop
    pitch_class_histogram  FLOAT[12],          -- share of the note duration per pitch class, C first
    params_hash            VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, source)
);

CREATE TABLE crop_midi_notes (
    crop_id      VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    note_index   INTEGER NOT NULL,   -- order by start, then pitch
    start_s      DOUBLE NOT NULL,    -- seconds from the crop's start
    end_s        DOUBLE NOT NULL,
    pitch        UTINYINT NOT NULL,  -- MIDI number
    velocity     UTINYINT NOT NULL,  -- round(127 * basic-pitch's amplitude), at least 1
    start_beat   DOUBLE,             -- beats from the crop's first beat (fractional; NULL without a beat grid)
    end_beat     DOUBLE,
    bar          INTEGER,            -- 1 = the bar opening on the crop's first downbeat, 0 = beats before it
    beat_in_bar  DOUBLE              -- 1.0 = on the bar's downbeat, 2.5 = halfway between its beats 2 and 3
);
