-- name: upsert_files
INSERT INTO files (path, source, size_bytes, mtime_ns, scan_error, present)
SELECT path, $source, size_bytes, mtime_ns, scan_error, true FROM scanned
ON CONFLICT (path) DO UPDATE SET
    source = excluded.source,
    size_bytes = excluded.size_bytes,
    mtime_ns = excluded.mtime_ns,
    scan_error = excluded.scan_error,
    present = true,
    last_seen_at = now();

-- name: mark_missing
UPDATE files SET present = false
WHERE source = $source AND present AND path NOT IN (SELECT path FROM scanned);
