-- The fingerprint stage's part of the store's views (etl/app/schema.py assembles them; the sections'
-- names say where each goes, see docs/adding-a-stage.md).

-- name: macros
-- Created here, before the views, because tracks_v joins them (the `views` section comes after it).
--
-- Each pair in both directions: `offset_s` is where `other_track_id` starts, in seconds into `track_id`.
CREATE OR REPLACE VIEW duplicate_pairs_v AS
SELECT track_id, other_track_id, offset_s, matched_share, bit_error_rate FROM duplicate_pairs
UNION ALL
SELECT other_track_id, track_id, -offset_s, matched_share, bit_error_rate FROM duplicate_pairs;

-- Duplicate groups: the connected components of the pairs (a copy of a copy is a copy), each named
-- by its smallest track id. Label propagation (USING KEY keeps one label per track, the smallest
-- seen): as many rounds as the widest group's diameter, over the pairs only — tracks without a
-- duplicate cost nothing.
CREATE OR REPLACE VIEW duplicate_groups_v AS
WITH RECURSIVE labels(track_id, duplicate_group) USING KEY (track_id) AS (
    SELECT track_id, least(track_id, min(other_track_id)) FROM duplicate_pairs_v GROUP BY track_id
    UNION
    (SELECT e.track_id, min(r.duplicate_group)
     FROM recurring.labels AS r
     JOIN duplicate_pairs_v AS e ON e.other_track_id = r.track_id
     JOIN recurring.labels AS me ON me.track_id = e.track_id
     GROUP BY e.track_id, me.duplicate_group
     HAVING min(r.duplicate_group) < me.duplicate_group)
)
SELECT track_id, duplicate_group, count(*) OVER (PARTITION BY duplicate_group) AS group_size
FROM labels;

-- Per track, its closest duplicate (highest matched share, then the smaller id).
CREATE OR REPLACE VIEW duplicate_best_v AS
SELECT track_id,
       arg_max(other_track_id, (matched_share, other_track_id < track_id)) AS duplicate_of,
       max(matched_share) AS duplicate_share,
       arg_max(-offset_s, (matched_share, other_track_id < track_id)) AS duplicate_offset_s
FROM duplicate_pairs_v
GROUP BY track_id

-- name: tracks_v.select
-- duplicate_group: NULL for a track with no near-duplicate; duplicate_of: its closest copy, which
-- matches over duplicate_share of the shorter of the two, this track starting duplicate_offset_s
-- seconds into it (negative: before it starts)
dup_group.duplicate_group, dup_group.group_size AS duplicate_group_size,
dup_best.duplicate_of, dup_best.duplicate_share, dup_best.duplicate_offset_s,
fingerprinted.n_items IS NOT NULL AS fingerprinted

-- name: tracks_v.join
LEFT JOIN duplicate_groups_v AS dup_group USING (track_id)
LEFT JOIN duplicate_best_v AS dup_best USING (track_id)
LEFT JOIN (SELECT track_id, n_items FROM track_fingerprints) AS fingerprinted USING (track_id)

-- name: crops_v.select
-- the crop's track's near-duplicate group and how many tracks it holds (NULL: no copy found)
crop_dup.duplicate_group, crop_dup.group_size AS duplicate_group_size

-- name: crops_v.join
LEFT JOIN duplicate_groups_v AS crop_dup ON crop_dup.track_id = c.track_id

-- name: views
-- What `etl export --dedupe` leaves out: every member of a duplicate group but its best copy, the
-- lossless one first (PCM in WAV / FLAC / AIFF, ALAC, float), then the highest bit rate, then the
-- longest (a loop cut from a longer file is the copy left out), then the smaller id (a tie is
-- decided the same way on every machine).
CREATE OR REPLACE VIEW duplicate_copies_v AS
SELECT track_id, duplicate_group
FROM (SELECT g.track_id, g.duplicate_group,
             row_number() OVER (PARTITION BY g.duplicate_group
                                ORDER BY (t.codec LIKE 'PCM%' OR t.codec IN ('FLOAT', 'DOUBLE')
                                          OR lower(t.codec) LIKE 'alac%') DESC,
                                         t.bit_rate_kbps DESC NULLS LAST, t.duration_s DESC NULLS LAST,
                                         g.track_id) AS rank
      FROM duplicate_groups_v AS g
      JOIN tracks AS t USING (track_id))
WHERE rank > 1;
