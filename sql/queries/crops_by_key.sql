-- Crops in a key or Camelot code: key="F# minor" or key=11A, strongest key estimates first.
SELECT crop_id, path, duration_s, artist, title, bpm, key_name, key_camelot, key_strength
FROM crops_v
WHERE key_name = $key OR key_camelot = $key
ORDER BY key_strength DESC, crop_id
