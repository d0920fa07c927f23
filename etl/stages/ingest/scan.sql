-- name: upsert_files
-- A path whose stat changed since the last scan (size, mtime, ctime, inode: any rewrite or
-- replacement, even one that puts size and mtime back) gets a new stat_version: its ingest input.
-- Multitrack membership (etl/dsp/multitrack_layouts.py) is what this scan recognised.
INSERT INTO files (path, source, size_bytes, mtime_ns, ctime_ns, inode, scan_error, present, stat_version,
                   multitrack_group, multitrack_role, multitrack_stem, multitrack_layout)
SELECT path, $source, size_bytes, mtime_ns, ctime_ns, inode, scan_error, true, 0,
       multitrack_group, multitrack_role, multitrack_stem, multitrack_layout FROM scanned
ON CONFLICT (path) DO UPDATE SET
    stat_version = CASE
        WHEN files.size_bytes IS NOT DISTINCT FROM excluded.size_bytes
         AND files.mtime_ns IS NOT DISTINCT FROM excluded.mtime_ns
         AND files.ctime_ns IS NOT DISTINCT FROM excluded.ctime_ns
         AND files.inode IS NOT DISTINCT FROM excluded.inode
         AND files.scan_error IS NOT DISTINCT FROM excluded.scan_error
        THEN files.stat_version ELSE coalesce(files.stat_version, 0) + 1 END,
    source = excluded.source,
    size_bytes = excluded.size_bytes,
    mtime_ns = excluded.mtime_ns,
    ctime_ns = excluded.ctime_ns,
    inode = excluded.inode,
    scan_error = excluded.scan_error,
    multitrack_group = excluded.multitrack_group,
    multitrack_role = excluded.multitrack_role,
    multitrack_stem = excluded.multitrack_stem,
    multitrack_layout = excluded.multitrack_layout,
    present = true,
    missing_since = NULL,
    last_seen_at = now();

-- name: mark_missing
-- Gone from a reachable source folder: kept (with its track) until `etl gc` forgets it. Under a
-- folder the scan could not list (`unlisted`: each one's path and a trailing slash) nothing is
-- known to be gone: its files are left as they were, as those of an unreachable source are.
UPDATE files SET present = false, missing_since = now()
WHERE source = $source AND present AND path NOT IN (SELECT path FROM scanned)
  AND NOT EXISTS (SELECT 1 FROM unlisted WHERE starts_with(files.path, unlisted.prefix));
