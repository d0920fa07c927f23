-- chords (per crop): madmom's chord and key recognisers. A crop too quiet to measure has a row whose
-- measurements are all NULL (nothing recognised from silence).
CREATE TABLE crop_chords (
    crop_id                VARCHAR PRIMARY KEY,
    track_id               VARCHAR NOT NULL,
    chord_model            VARCHAR NOT NULL,     -- cnn | deepchroma ([chords] chord_model)
    -- madmom's segments in its own (Harte) labels: "C:maj", "A:min", "N" (no chord). Times are
    -- seconds from the crop's start; beats count from the crop's first beat (crops.beat_times_s),
    -- fractional, extended past the first / last beat at the nearest interval (NULL: under 2 beats).
    chords                 STRUCT(label VARCHAR, start_s DOUBLE, end_s DOUBLE, start_beat DOUBLE, end_beat DOUBLE)[],
    beat_chords            VARCHAR[],            -- the chord over each of crops.beat_times_s (same order)
    chords_text            VARCHAR,              -- "C G Am F": the segments' short names, "N" for no chord
    key_madmom             VARCHAR,              -- "F# minor" (tonic spelled with sharps, as key_name)
    key_madmom_camelot     VARCHAR,              -- "11A"
    key_madmom_confidence  DOUBLE,               -- the network's probability of that key
    key_madmom_scores      MAP(VARCHAR, FLOAT),  -- every key's probability (24; sums to 1)
    params_hash            VARCHAR NOT NULL
);
