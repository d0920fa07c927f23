-- Per track: grid BPM and meter, crop count, most common key, and the crops' mean loudness, brightness and danceability.
SELECT coalesce(title, regexp_extract(track_path, '[^/]+/[^/]+$')) AS track,
       round(any_value(track_bpm), 1) AS bpm, any_value(meter) AS meter, count(*) AS crops,
       mode(key_name) AS "key", round(avg(loudness_integrated_lufs), 1) AS lufs,
       round(avg(spectral_centroid_hz)) AS centroid_hz, round(avg(danceability), 2) AS danceability
FROM crops_v
GROUP BY ALL
ORDER BY bpm DESC NULLS LAST, track
