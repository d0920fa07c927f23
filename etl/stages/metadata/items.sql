-- Items of the metadata stage: every track. It reads the tags of the track's first present file,
-- so its input is that file's bytes (sha256, tags included): re-tagging re-runs this stage and
-- nothing else (the track id is a hash of the audio alone). A track whose files are all gone is
-- held (`present` false). A multitrack group's rendered mix has no tags: the file the group names
-- (`tags_path`: its first stem, or the NI Stems file) stands for them.
--
-- A file in a rhythm-game song folder (Frets on Fire, Rock Band, Clone Hero) also reads the
-- folder's song.ini (etl/stages/metadata/songini.py): its input then covers that file as the scan
-- saw it (size, mtime, and the stat version, which moves on any rewrite), so editing song.ini
-- re-runs metadata for that track. Tracks without one keep the input they always had.
WITH read_from AS (
    SELECT t.track_id, p.path IS NOT NULL AS present,
           coalesce(tf.sha256, p.sha256) AS sha256,
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
),
-- Paths are POSIX: '/' alone separates folders (a backslash is a character of a name).
song_ini AS (  -- one per folder (`Song.ini` beside `song.ini` on a case-sensitive disk: the first)
    SELECT parse_dirpath(path, 'forward_slash') AS folder, path, size_bytes, mtime_ns, stat_version
    FROM files
    WHERE present AND scan_error IS NULL AND lower(parse_filename(path, false, 'forward_slash')) = 'song.ini'
    QUALIFY row_number() OVER (PARTITION BY folder ORDER BY path) = 1
)
SELECT r.track_id AS item_id,
       CASE WHEN i.path IS NULL THEN r.sha256
            ELSE r.sha256 || '|song.ini:' || i.size_bytes || ':' || i.mtime_ns || ':' || i.stat_version END AS input_fp,
       r.track_id, r.present, r.path, r.source,
       CASE WHEN i.path IS NOT NULL THEN
           {'path': i.path, 'size_bytes': i.size_bytes, 'mtime_ns': i.mtime_ns} END AS song_ini
FROM read_from AS r
LEFT JOIN song_ini AS i ON i.folder = parse_dirpath(r.path, 'forward_slash')
