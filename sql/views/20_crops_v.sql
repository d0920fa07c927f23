-- One row per crop: the crop, its track, its stem crops, then each stage's columns (from its
-- folder's views.sql: its `crops_v.select` and `crops_v.join` sections, filled in registry order by
-- etl/app/schema.py). Paths are absolute (stored relative to the data folder). `crops_all_v` keeps
-- the crops of tracks whose files are all gone (`present` false, until `etl gc` drops them);
-- `crops_v` is the present ones.
CREATE OR REPLACE VIEW crops_all_v AS
SELECT c.crop_id, c.track_id, c.crop_index, c.mode, artifact_path(c.path) AS path, c.format, c.sample_rate,
       c.channels, c.start_s, c.end_s, c.duration_s, c.n_bars, c.n_beats, c.bpm AS crop_grid_bpm, c.bpm_method,
       c.source_peak_dbfs, c.over_full_scale,
       c.beat_times_s, c.beat_positions, c.downbeat_times_s,
       t.present, t.path AS track_path, t.duration_s AS track_duration_s,
       coalesce(s.stems, []) AS stems,              -- stem crops cut beside this crop
       -- The tempo to trust: the beat grid's over this crop's own beats (the track's where the crop
       -- has too few). The crop's own estimate is `bpm_crop`, its relation to this `bpm_relation`.
       coalesce(c.bpm, t.bpm) AS bpm
       {crops_v.select}
FROM crops AS c
LEFT JOIN tracks_all_v AS t USING (track_id)
LEFT JOIN (SELECT crop_id, list(stem ORDER BY stem) AS stems FROM crop_stems GROUP BY crop_id) AS s USING (crop_id)
{crops_v.join};

CREATE OR REPLACE VIEW crops_v AS
SELECT * FROM crops_all_v WHERE present
