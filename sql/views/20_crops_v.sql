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
       -- Whether the crop's track has a file now: tested against track_paths_v directly, not read
       -- from `t`. A filter on `t` (t.present, t.bpm) with LIMIT returned every row where a later
       -- LEFT JOIN carries a constant condition (crop_midi's source = 'mix', crop_captions' kind =
       -- 'full') that matches nothing: DuckDB 2.0.1's optimizer. Its minimal form (72 rows, not 1):
       --   CREATE TABLE crops AS SELECT 'c' || i AS crop_id, 't' || (i % 3) AS track_id FROM range(72) r(i);
       --   CREATE TABLE files AS SELECT 't' || i AS track_id FROM range(3) r(i);
       --   CREATE TABLE midi (crop_id VARCHAR, source VARCHAR);
       --   SELECT count(*) FROM (SELECT c.crop_id FROM crops AS c
       --       LEFT JOIN (SELECT track_id, count(*) AS r FROM files GROUP BY track_id) AS t USING (track_id)
       --       LEFT JOIN midi AS m ON m.crop_id = c.crop_id AND m.source = 'mix'
       --       WHERE t.r > 0 LIMIT 1);
       -- (tests/integration/test_query_export.py: LIMIT means LIMIT on the views.)
       c.track_id IN (SELECT track_id FROM track_paths_v) AS present,
       t.path AS track_path, t.duration_s AS track_duration_s,
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
