-- Crops with a BPM between $min_bpm and $max_bpm (inclusive), steadiest tempo first.
SELECT crop_id, path, duration_s, artist, title, genre, bpm, tempo_steady, key_name
FROM crops_v
WHERE bpm BETWEEN $min_bpm AND $max_bpm
ORDER BY tempo_steady DESC, bpm, crop_id
