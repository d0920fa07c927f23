-- How many crops (and how many seconds) in each detected key.
SELECT key_name, key_camelot, count(*) AS crops, round(sum(duration_s), 1) AS seconds
FROM crops_v
GROUP BY ALL
ORDER BY crops DESC, key_name
