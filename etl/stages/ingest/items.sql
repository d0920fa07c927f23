-- Items of the ingest stage: every path present on disk, and the paths gone missing that still
-- hold a track (held, `present` false, until the file is back or `etl gc` forgets it). Its input is
-- the stat version the scan keeps (etl/stages/ingest/scan.sql), and whether the file is a member of
-- a multitrack group (a stem holds no track of its own: becoming one, or ceasing to be, re-ingests it).
SELECT path AS item_id,
       CAST(stat_version AS VARCHAR)
           || CASE WHEN multitrack_role IN ('stem', 'streams') THEN ':member' ELSE '' END AS input_fp,
       present,
       path,
       scan_error,
       multitrack_role
FROM files
WHERE present OR track_id IS NOT NULL OR (multitrack_role IS NOT NULL AND audio_sha256 IS NOT NULL)
