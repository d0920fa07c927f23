-- The stems stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
coalesce(stems.empty_stems, []) AS empty_stems  -- the track's stems flagged effectively empty

-- name: crops_v.join
LEFT JOIN (SELECT track_id, list(stem ORDER BY stem) AS empty_stems FROM track_stems WHERE empty GROUP BY track_id)
       AS stems USING (track_id)

-- name: export.long_lists
empty_stems
