-- One line per track: tags, duration, BPM and meter of its beat grid, and how many crops it gave.
SELECT t.track_id, t.artist, t.title, t.album, t.genre, round(t.duration_s, 1) AS duration_s,
       round(b.bpm, 1) AS bpm, b.meter, count(c.crop_id) AS crops, t.path
FROM tracks_v AS t
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN crops AS c USING (track_id)
GROUP BY ALL
ORDER BY t.artist, t.album, t.title
