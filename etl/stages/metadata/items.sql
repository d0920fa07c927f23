-- Items of the metadata stage: every track. It reads the tags of the track's first present file,
-- so its input is that file's bytes (sha256, tags included): re-tagging re-runs this stage and
-- nothing else (the track id is a hash of the audio alone). A track whose files are all gone is
-- held (`present` false). A multitrack group's rendered mix has no tags: the file the group names
-- (`tags_path`: its first stem, or the NI Stems file) stands for them.
SELECT t.track_id AS item_id, coalesce(tf.sha256, p.sha256) AS input_fp, t.track_id,
       p.path IS NOT NULL AS present,
       coalesce(tf.path, p.path) AS path,
       CASE WHEN tf.path IS NOT NULL THEN
           {'path': tf.path, 'size_bytes': tf.ingested_size_bytes, 'mtime_ns': tf.ingested_mtime_ns,
            'sample_hash': tf.sample_hash}
       ELSE p.source END AS source
FROM tracks AS t
LEFT JOIN track_paths_v AS p USING (track_id)
LEFT JOIN (SELECT track_id, min(tags_path) AS tags_path FROM multitrack_groups
           WHERE mix_path IS NOT NULL GROUP BY track_id) AS g USING (track_id)
LEFT JOIN files AS tf ON tf.path = g.tags_path AND tf.present AND tf.sha256 IS NOT NULL
