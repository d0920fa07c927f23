-- One row per track: probe facts, and where it lives on disk now; each stage adds its columns and
-- joins from its folder's views.sql (its `tracks_v.select` and `tracks_v.join` sections: the tags, the beat
-- grid's summary...; etl/app/schema.py fills them in registry order). `tracks_all_v` keeps the
-- tracks whose files are all gone (`present` false; their rows stay until `etl gc` drops them after
-- [gc] missing_grace_days); `tracks_v` is the present ones only.
CREATE OR REPLACE VIEW tracks_all_v AS
SELECT t.track_id,
       p.path,
       p.name AS source_name,  -- the file's name (a multitrack group's folder): for a track without a title
       coalesce(p.n_paths, 0) AS n_paths,
       p.path IS NOT NULL AS present,
       t.container, t.codec, t.duration_s, t.sample_rate, t.channels, t.bit_rate_kbps, t.size_bytes
       {tracks_v.select}
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
{tracks_v.join};

CREATE OR REPLACE VIEW tracks_v AS
SELECT * FROM tracks_all_v WHERE present
