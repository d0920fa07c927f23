-- Where each track can be read now: its first present path (several paths may hold the same audio),
-- and, in `source`, what ingest recorded of that file: the stages that read it check it is still
-- the same file before and after reading (etl/dsp/sourcefile.py). A multitrack group's rendered mix
-- (the sum of its stems, or an NI Stems file's mix stream: etl/stages/multitrack/) is read from the
-- data folder while any of the group's files is present; `source` then names the rendered file.
-- `name` is what to call a track that has no title tag: its file's name without the extension, or
-- for a multitrack group the name of the folder holding its files (an NI Stems file's own name),
-- never the rendered mix's.
CREATE OR REPLACE VIEW track_paths_v AS
SELECT track_id, path, parse_filename(path, true) AS name, n_paths, sha256,
       {'path': path, 'size_bytes': ingested_size_bytes, 'mtime_ns': ingested_mtime_ns,
        'sample_hash': sample_hash} AS source
FROM (SELECT track_id, path, sha256, sample_hash, ingested_size_bytes, ingested_mtime_ns,
             count(*) OVER (PARTITION BY track_id) AS n_paths,
             row_number() OVER (PARTITION BY track_id ORDER BY path) AS path_rank
      FROM files
      WHERE present AND track_id IS NOT NULL)
WHERE path_rank = 1
UNION ALL
SELECT track_id, path, name, n_paths, sha256,
       {'path': path, 'size_bytes': mix_size_bytes, 'mtime_ns': mix_mtime_ns, 'sample_hash': mix_sample_hash}
FROM (SELECT g.track_id, artifact_path(g.mix_path) AS path, g.mix_sha256 AS sha256, g.mix_size_bytes,
             (SELECT CASE WHEN g.layout = 'ni-stems'  -- "Song.stem.mp4" is "Song"
                          THEN regexp_replace(parse_filename(min(f.path)), '\.stem\.[^.]*$', '', 'i')
                          ELSE parse_filename(parse_dirpath(min(f.path))) END
              FROM files AS f WHERE f.multitrack_group = g.group_id) AS name,
             g.mix_mtime_ns, g.mix_sample_hash,
             count(*) OVER (PARTITION BY g.track_id) AS n_paths,
             row_number() OVER (PARTITION BY g.track_id ORDER BY g.group_id) AS path_rank
      FROM multitrack_groups AS g
      WHERE g.mix_path IS NOT NULL
        AND EXISTS (SELECT 1 FROM files AS f WHERE f.multitrack_group = g.group_id AND f.present))
WHERE path_rank = 1
