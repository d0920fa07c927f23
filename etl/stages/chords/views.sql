-- The chords stage's part of the store's views (etl/app/schema.py assembles them; the sections'
-- names say where each goes, see docs/adding-a-stage.md).

-- name: macros
-- The agreed key of a crop from its two opinions: essentia's KeyExtractor (crop_features.key_name,
-- features stage; NULL where its strength is under 0.3) and madmom's CNN key recogniser
-- (crop_chords.key_madmom, chords stage, with a probability for each of the 24 keys).
--
--   agree                     -> that key                        key_agreement 'agree'
--   differ in mode only       -> essentia's key                  'mode'    (same tonic: parallel keys,
--                                                                           or same scale: relative keys)
--   differ otherwise          -> madmom's key                    'differ'  (e.g. a fifth apart)
--   one opinion only          -> that one                        'essentia only' / 'madmom only'
--
-- Chosen on the real recordings with a known key (tests/key_eval.py, 12 crop-length windows):
-- madmom's wrong keys there were relative or parallel to the right one, essentia's a fifth away.
-- key_confidence: the share of the two opinions backing the key, madmom backing it with its
-- probability and essentia with its vote: (P_madmom(key) + [essentia names it]) / 2; with madmom's
-- opinion alone its probability; with essentia's alone NULL (its strength, key_strength, is a
-- profile correlation, not a probability).
CREATE OR REPLACE MACRO key_pitch_class(key) AS
    list_position(['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'], split_part(key, ' ', 1)) - 1;

CREATE OR REPLACE MACRO keys_differ_in_mode_only(a, b) AS
    split_part(a, ' ', 2) <> split_part(b, ' ', 2)
    AND (key_pitch_class(a) = key_pitch_class(b)                                   -- parallel: C major / C minor
         OR (CASE WHEN split_part(a, ' ', 2) = 'major' THEN key_pitch_class(a) - key_pitch_class(b)
                  ELSE key_pitch_class(b) - key_pitch_class(a) END + 12) % 12 = 3); -- relative: C major / A minor

CREATE OR REPLACE MACRO agreed_key_name(essentia, madmom) AS
    CASE WHEN madmom IS NULL THEN essentia
         WHEN essentia IS NULL THEN madmom
         WHEN keys_differ_in_mode_only(essentia, madmom) THEN essentia
         ELSE madmom END;

CREATE OR REPLACE MACRO agreed_key_confidence(essentia, madmom, madmom_scores) AS
    CASE WHEN madmom IS NULL THEN NULL
         WHEN essentia IS NULL THEN madmom_scores[madmom]
         ELSE (madmom_scores[agreed_key_name(essentia, madmom)]
               + CASE WHEN agreed_key_name(essentia, madmom) = essentia THEN 1 ELSE 0 END) / 2 END;

CREATE OR REPLACE MACRO agreed_key_agreement(essentia, madmom) AS
    CASE WHEN essentia IS NULL AND madmom IS NULL THEN NULL
         WHEN madmom IS NULL THEN 'essentia only'
         WHEN essentia IS NULL THEN 'madmom only'
         WHEN essentia = madmom THEN 'agree'
         WHEN agreed_key_name(essentia, madmom) = essentia THEN 'mode'
         ELSE 'differ' END;

-- All three in one struct (tests/key_eval.py).
CREATE OR REPLACE MACRO agreed_key(essentia, madmom, madmom_scores) AS
    {'key_name': agreed_key_name(essentia, madmom),
     'key_confidence': agreed_key_confidence(essentia, madmom, madmom_scores),
     'key_agreement': agreed_key_agreement(essentia, madmom)};

-- The track's key (tracks_v.key_name / key_confidence) from its crops' opinions summed, not from
-- their agreed keys voted: each crop backs every one of the 24 keys with its share of the two
-- opinions, as key_confidence does for its own key, (P_madmom(key) + [essentia names it]) / 2
-- (madmom's probability alone where essentia named none; essentia's vote alone where madmom has
-- none), so each crop's backing sums to 1 over the keys. A key that two crops each held second
-- counts, where a vote counts only the winner of each. The track's key is the key with the most
-- backing over its crops, weighted by their length; key_confidence is that backing's mean share
-- (0..1). Crops with no opinion (too quiet: both NULL) back nothing; a track none of whose crops
-- has one has no key (NULL). Measured on rendered pieces of music21's corpus and real recordings
-- against the crops' vote and essentia over the whole file: bench/track_key.py, README.
CREATE OR REPLACE MACRO all_key_names() AS
    [['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'][i % 12 + 1]
     || CASE WHEN i < 12 THEN ' major' ELSE ' minor' END FOR i IN range(24)];

CREATE OR REPLACE MACRO key_backing(key, essentia, madmom_scores) AS
    CASE WHEN madmom_scores IS NULL THEN CASE WHEN essentia = key THEN 1.0 ELSE 0.0 END
         WHEN essentia IS NULL THEN madmom_scores[key]
         ELSE (madmom_scores[key] + CASE WHEN essentia = key THEN 1.0 ELSE 0.0 END) / 2 END;

-- name: tracks_v.select
-- the track's key from its crops' key opinions summed (the subquery in tracks_v.join), and that key's share of them
track_key.key_name, track_key.key_confidence

-- name: tracks_v.join
-- (the track's key, a subquery here rather than a table macro: the macros section is also run on a
-- bare connection, where a table macro's tables do not exist)
LEFT JOIN (
        SELECT track_id, best.key AS key_name, best.share AS key_confidence
        FROM (SELECT track_id, max({'share': share, 'key': key}) AS best  -- ties: the later name, not chance
              FROM (SELECT c.track_id, k.key,
                           sum(c.duration_s * key_backing(k.key, f.key_name, ch.key_madmom_scores))
                               / sum(c.duration_s) AS share
                    FROM crops AS c
                    LEFT JOIN crop_features AS f USING (crop_id)
                    LEFT JOIN crop_chords AS ch USING (crop_id)
                    CROSS JOIN (SELECT unnest(all_key_names()) AS key) AS k
                    WHERE f.key_name IS NOT NULL OR ch.key_madmom_scores IS NOT NULL
                    GROUP BY c.track_id, k.key)
              GROUP BY track_id)
) AS track_key USING (track_id)

-- name: crops_v.select
-- chords (madmom): "C G Am F" ("N": no chord), the chord over each beat, the segments
chords.chords_text AS chords, chords.beat_chords, chords.chords AS chord_segments,
-- the key: both opinions, and the agreed one (the macros above)
features.key_name AS key_essentia, chords.key_madmom, chords.key_madmom_confidence,
agreed_key_name(features.key_name, chords.key_madmom) AS key_name,
split_part(agreed_key_name(features.key_name, chords.key_madmom), ' ', 1) AS key_tonic,
split_part(agreed_key_name(features.key_name, chords.key_madmom), ' ', 2) AS key_mode,
CASE WHEN agreed_key_name(features.key_name, chords.key_madmom) = features.key_name THEN features.key_camelot
     ELSE chords.key_madmom_camelot END AS key_camelot,
agreed_key_confidence(features.key_name, chords.key_madmom, chords.key_madmom_scores) AS key_confidence,
agreed_key_agreement(features.key_name, chords.key_madmom) AS key_agreement

-- name: crops_v.join
LEFT JOIN crop_chords AS chords USING (crop_id)

-- name: export.long_lists
beat_chords, chord_segments
