-- Items of the stems stage: every track; it reads what ingest (or the multitrack stage) made of it. A
-- track whose files are all gone is held (`present` false). `provided`: the stems its source
-- provides (a multitrack source), which make the stage skip it or, with separate_provided, are the
-- references its SDR is measured against (`file`: what ingest recorded of a user's stem file).
SELECT t.track_id AS item_id, NULL AS input_fp, t.track_id, 'stems:' || t.track_id AS stems_key,
       p.path IS NOT NULL AS present, p.path, p.source, t.duration_s, t.sample_rate, t.channels, t.frames,
       ps.provided
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
LEFT JOIN (SELECT s.track_id,
                  list({'stem': s.stem, 'path': artifact_path(s.path),
                        'file': CASE WHEN f.path IS NOT NULL THEN
                                    {'path': f.path, 'size_bytes': f.ingested_size_bytes,
                                     'mtime_ns': f.ingested_mtime_ns, 'sample_hash': f.sample_hash} END}
                       ORDER BY s.stem) AS provided
           FROM track_stems AS s LEFT JOIN files AS f ON f.path = s.path
           WHERE s.source = 'provided' AND s.path IS NOT NULL
           GROUP BY s.track_id) AS ps USING (track_id)
