-- Crops whose integrated loudness lies between $min_lufs and $max_lufs (e.g. -14 and -8).
SELECT crop_id, path, duration_s, artist, title, loudness_integrated_lufs, loudness_range_lu, true_peak_dbtp
FROM crops_v
WHERE loudness_integrated_lufs BETWEEN $min_lufs AND $max_lufs
ORDER BY loudness_integrated_lufs DESC, crop_id
