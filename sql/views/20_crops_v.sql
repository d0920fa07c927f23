-- One row per crop: the crop, its track's tags and beat grid summary, its stems, and every feature.
-- Paths are absolute (stored relative to the data folder). `crops_all_v` keeps the crops of tracks
-- whose files are all gone (`present` false, until `etl gc` drops them); `crops_v` is the present ones.
CREATE OR REPLACE VIEW crops_all_v AS
SELECT c.crop_id, c.track_id, c.crop_index, c.mode, artifact_path(c.path) AS path, c.format, c.sample_rate,
       c.channels, c.start_s, c.end_s, c.duration_s, c.n_bars, c.n_beats, c.bpm AS crop_grid_bpm, c.bpm_method,
       c.source_peak_dbfs, c.over_full_scale,
       c.beat_times_s, c.beat_positions, c.downbeat_times_s,
       t.present, t.path AS track_path, t.artist, t.title, t.album, t.album_artist, t.year, t.genre, t.compilation,
       t.bpm_tag, t.key_tag, t.duration_s AS track_duration_s,
       t.bpm AS track_bpm, t.meter, t.tempo_steady, t.bpm_confidence,
       coalesce(s.stems, []) AS stems,              -- stem crops cut beside this crop
       coalesce(e.empty_stems, []) AS empty_stems,  -- the track's stems flagged effectively empty
       -- The tempo to trust: the beat grid's over this crop's own beats (the track's where the crop
       -- has too few). The crop's own estimate is `bpm_crop`, its relation to this `bpm_relation`.
       coalesce(c.bpm, t.bpm) AS bpm,
       -- key_name / key_tonic / key_mode / key_camelot: the agreed key, at the end (essentia's is key_essentia)
       f.* EXCLUDE (crop_id, track_id, loudness_hash, spectral_hash, tonal_hash, rhythm_hash, series_hash,
                    key_name, key_tonic, key_mode, key_camelot),
       -- classify: the top labels of the installed heads (NULL where that head is not installed)
       k.genre_top, k.genres, k.moods, k.instruments, k.voice,
       -- aesthetics: AudioBox Aesthetics scores (NULL where the stage has not scored the crop)
       a.aes_ce, a.aes_cu, a.aes_pc, a.aes_pq,
       -- midi: basic-pitch's notes on the mix crop (NULL where not transcribed; the stems' in crop_midi_v)
       m.n_notes AS midi_notes, m.pitch_min AS midi_pitch_min, m.pitch_max AS midi_pitch_max,
       m.mean_polyphony AS midi_polyphony, m.note_density_per_s AS midi_note_density_per_s,
       artifact_path(m.path) AS midi_path,
       -- chords (madmom): "C G Am F" ("N": no chord), the chord over each beat, the segments
       ch.chords_text AS chords, ch.beat_chords, ch.chords AS chord_segments,
       -- the key: both opinions, and the agreed one (sql/views/00_agreed_key.sql)
       f.key_name AS key_essentia, ch.key_madmom, ch.key_madmom_confidence,
       agreed_key_name(f.key_name, ch.key_madmom) AS key_name,
       split_part(agreed_key_name(f.key_name, ch.key_madmom), ' ', 1) AS key_tonic,
       split_part(agreed_key_name(f.key_name, ch.key_madmom), ' ', 2) AS key_mode,
       CASE WHEN agreed_key_name(f.key_name, ch.key_madmom) = f.key_name THEN f.key_camelot
            ELSE ch.key_madmom_camelot END AS key_camelot,
       agreed_key_confidence(f.key_name, ch.key_madmom, ch.key_madmom_scores) AS key_confidence,
       agreed_key_agreement(f.key_name, ch.key_madmom) AS key_agreement
FROM crops AS c
LEFT JOIN tracks_all_v AS t USING (track_id)
LEFT JOIN (SELECT crop_id, list(stem ORDER BY stem) AS stems FROM crop_stems GROUP BY crop_id) AS s USING (crop_id)
LEFT JOIN (SELECT track_id, list(stem ORDER BY stem) AS empty_stems FROM track_stems WHERE empty GROUP BY track_id)
       AS e USING (track_id)
LEFT JOIN crop_features AS f USING (crop_id)
LEFT JOIN (SELECT crop_id,
                  any_value(top[1].label) FILTER (WHERE head LIKE 'genre_discogs400-%') AS genre_top,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'genre_discogs400-%') AS genres,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'mtg_jamendo_moodtheme-%') AS moods,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'mtg_jamendo_instrument-%') AS instruments,
                  any_value(top[1].label) FILTER (WHERE head LIKE 'voice_instrumental-%') AS voice
           FROM crop_classes GROUP BY crop_id) AS k USING (crop_id)
LEFT JOIN crop_aesthetics AS a USING (crop_id)
LEFT JOIN crop_midi AS m ON m.crop_id = c.crop_id AND m.source = 'mix'
LEFT JOIN crop_chords AS ch USING (crop_id);

CREATE OR REPLACE VIEW crops_v AS
SELECT * FROM crops_all_v WHERE present
