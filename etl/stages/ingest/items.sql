-- Items of the ingest stage: every path present on disk, and the paths gone missing that still
-- hold a track (held, `present` false, until the file is back or `etl gc` forgets it). Its input is
-- the stat version the scan keeps (etl/stages/ingest/scan.sql).
SELECT path AS item_id,
       CAST(stat_version AS VARCHAR) AS input_fp,
       present,
       path,
       scan_error
FROM files
WHERE present OR track_id IS NOT NULL
