-- Near-duplicate groups (the fingerprint stage): one row per track that has a copy, grouped; the
-- copy it matches best, over which share of the shorter, and where it starts in it (seconds).
SELECT t.duplicate_group, t.duplicate_group_size AS tracks, t.track_id, t.artist, t.title, t.codec,
       t.bit_rate_kbps, round(t.duration_s, 2) AS duration_s, t.duplicate_of,
       round(t.duplicate_share, 3) AS matched_share, round(t.duplicate_offset_s, 2) AS offset_s, t.path
FROM tracks_v AS t
WHERE t.duplicate_group IS NOT NULL
ORDER BY tracks DESC, t.duplicate_group, t.duration_s DESC, t.track_id
