-- Items of the ingest stage: every path present on disk. Its input changes with size / mtime.
SELECT path AS item_id,
       coalesce(CAST(size_bytes AS VARCHAR), '') || ':' || coalesce(CAST(mtime_ns AS VARCHAR), '') || ':'
           || coalesce(scan_error, '') AS input_fp,
       path,
       scan_error
FROM files
WHERE present
