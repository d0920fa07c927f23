-- The midi stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
-- midi: basic-pitch's notes on the mix crop (NULL where not transcribed; the stems' in crop_midi_v)
midi.n_notes AS midi_notes, midi.pitch_min AS midi_pitch_min, midi.pitch_max AS midi_pitch_max,
midi.mean_polyphony AS midi_polyphony, midi.note_density_per_s AS midi_note_density_per_s,
artifact_path(midi.path) AS midi_path

-- name: crops_v.join
LEFT JOIN crop_midi AS midi ON midi.crop_id = c.crop_id AND midi.source = 'mix'

-- name: views
-- midi per (crop, source): the MIDI file (absolute path), the note statistics and where the crop
-- lies in its track, for the crops of present tracks. The notes themselves: crop_midi_notes, e.g.
--   SELECT n.* FROM crop_midi_notes AS n JOIN crop_midi_v USING (crop_id, source) WHERE source = 'bass'
CREATE OR REPLACE VIEW crop_midi_v AS
SELECT m.crop_id, m.source, m.track_id, c.crop_index, c.start_s AS crop_start_s, c.duration_s AS crop_duration_s,
       artifact_path(m.path) AS path, m.sha256, m.n_notes, m.pitch_min, m.pitch_max, m.mean_polyphony,
       m.note_density_per_s, m.pitch_class_histogram
FROM crop_midi AS m
JOIN crops AS c USING (crop_id)
JOIN track_paths_v AS p ON p.track_id = m.track_id
