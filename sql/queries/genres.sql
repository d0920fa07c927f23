-- Genre tags with their number of tracks and crops and the crops' median BPM.
SELECT coalesce(genre, '(untagged)') AS genre, count(DISTINCT track_id) AS tracks, count(*) AS crops,
       round(median(bpm), 1) AS median_bpm
FROM crops_v
GROUP BY ALL
ORDER BY crops DESC, genre
