-- Where each track can be read now: its first present path (several paths may hold the same audio),
-- and, in `source`, what ingest recorded of that file: the stages that read it check it is still
-- the same file before and after reading (etl/dsp/sourcefile.py).
CREATE OR REPLACE VIEW track_paths_v AS
SELECT track_id, path, n_paths, sha256,
       {'path': path, 'size_bytes': ingested_size_bytes, 'mtime_ns': ingested_mtime_ns,
        'sample_hash': sample_hash} AS source
FROM (SELECT track_id, path, sha256, sample_hash, ingested_size_bytes, ingested_mtime_ns,
             count(*) OVER (PARTITION BY track_id) AS n_paths,
             row_number() OVER (PARTITION BY track_id ORDER BY path) AS path_rank
      FROM files
      WHERE present AND track_id IS NOT NULL)
WHERE path_rank = 1
