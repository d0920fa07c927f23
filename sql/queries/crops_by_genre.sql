-- Crops whose genre tag contains $genre (case-insensitive), with BPM, key and loudness.
SELECT crop_id, path, duration_s, artist, title, genre, bpm, key_name, loudness_integrated_lufs
FROM crops_v
WHERE genre ILIKE '%' || $genre || '%'
ORDER BY artist, title, crop_index
