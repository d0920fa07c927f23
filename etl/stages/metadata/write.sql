-- name: clear_tags
DELETE FROM track_tags WHERE track_id IN (SELECT item_id FROM cleared);

-- name: upsert_tags
INSERT INTO track_tags (track_id, tag_format, artist, title, album, album_artist, year, date_text, genre,
                        track_number, track_total, disc_number, compilation, bpm_tag, key_tag, raw_tags, params_hash)
SELECT track_id, tag_format, artist, title, album, album_artist, year, date_text, genre,
       track_number, track_total, disc_number, compilation, bpm_tag, key_tag, raw_tags, $params_hash
FROM read_tags
ON CONFLICT (track_id) DO UPDATE SET
    tag_format = excluded.tag_format, artist = excluded.artist, title = excluded.title,
    album = excluded.album, album_artist = excluded.album_artist, year = excluded.year,
    date_text = excluded.date_text, genre = excluded.genre, track_number = excluded.track_number,
    track_total = excluded.track_total, disc_number = excluded.disc_number,
    compilation = excluded.compilation, bpm_tag = excluded.bpm_tag, key_tag = excluded.key_tag, raw_tags = excluded.raw_tags,
    params_hash = excluded.params_hash, read_at = now();
