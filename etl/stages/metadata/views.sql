-- The metadata stage's part of the store's views (etl/app/schema.py assembles them).

-- name: tracks_v.select
tags.artist, tags.title, tags.album, tags.album_artist, tags.year, tags.genre, tags.track_number,
tags.disc_number, tags.compilation, tags.bpm_tag, tags.key_tag, tags.tag_format,
tags.raw_tags  -- every tag field's text as read (typed columns are NULL where it did not fit)

-- name: tracks_v.join
LEFT JOIN track_tags AS tags USING (track_id)

-- name: crops_v.select
-- the track's tags
t.artist, t.title, t.album, t.album_artist, t.year, t.genre, t.compilation, t.bpm_tag, t.key_tag
