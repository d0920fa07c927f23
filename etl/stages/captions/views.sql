-- The captions stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
-- the `full` caption (NULL where none was written); every kind is in crop_captions
captions.caption

-- name: crops_v.join
LEFT JOIN (SELECT crop_id, text AS caption FROM crop_captions WHERE kind = 'full') AS captions USING (crop_id)
