-- One row per track: probe facts, tags, and where it lives on disk now. `tracks_all_v` keeps the
-- tracks whose files are all gone (`present` false; their rows stay until `etl gc` drops them after
-- [gc] missing_grace_days); `tracks_v` is the present ones only.
CREATE OR REPLACE VIEW tracks_all_v AS
SELECT t.track_id,
       p.path,
       coalesce(p.n_paths, 0) AS n_paths,
       p.path IS NOT NULL AS present,
       t.container, t.codec, t.duration_s, t.sample_rate, t.channels, t.bit_rate_kbps, t.size_bytes,
       g.artist, g.title, g.album, g.album_artist, g.year, g.genre, g.track_number, g.disc_number,
       g.compilation, g.bpm_tag, g.key_tag, g.tag_format,
       g.raw_tags,  -- every tag field's text as read (typed columns are NULL where it did not fit)
       b.bpm, b.bpm_method, b.meter, b.bpm_confidence, b.tempo_steady  -- the beat grid's summary (NULL: none)
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
LEFT JOIN track_tags AS g USING (track_id)
LEFT JOIN beat_grids AS b USING (track_id);

CREATE OR REPLACE VIEW tracks_v AS
SELECT * FROM tracks_all_v WHERE present
