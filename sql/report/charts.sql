-- The data behind each chart, aggregated here so that a page about a million crops stays small.
-- <selected>: see store.sql. <value>, <x>, <y>, <group>, <genre> are expressions over
-- crops_v's columns, made by the report from column names it found in crops_v (quoted identifiers).

-- name: histogram
-- Equal-width bins of one column over <source> (the selected crops or their tracks), <group> per
-- bar segment. The width is a round number (1, 2 or 5 × 10^k) giving about $report_bins bins.
WITH v AS (SELECT {value}::DOUBLE AS x, {group} AS grp FROM ({source}) WHERE isfinite({value}::DOUBLE)),
     r AS (SELECT (max(x) - min(x)) / $report_bins AS raw FROM v),
     m AS (SELECT raw, pow(10, floor(log10(raw))) AS magnitude FROM r WHERE raw > 0),
     s AS (SELECT coalesce((SELECT magnitude * CASE WHEN raw / magnitude <= 1 THEN 1
                                                    WHEN raw / magnitude <= 2 THEN 2
                                                    WHEN raw / magnitude <= 5 THEN 5 ELSE 10 END FROM m),
                           1.0) AS step)
SELECT round(floor(x / step) * step, 9) AS bin_start, round((floor(x / step) + 1) * step, 9) AS bin_end,
       grp AS "group", count(*) AS n
FROM v, s
GROUP BY ALL
ORDER BY bin_start, "group"

-- name: points
-- A scatter's points: at most $report_points of the selected crops, the same ones every time (ordered
-- by a hash of the crop id), and how many there were in all.
SELECT {x}::DOUBLE AS x, {y}::DOUBLE AS y, {group} AS "group", crop_id, artist, title,
       count(*) OVER () AS total
FROM ({selected})
WHERE isfinite({x}::DOUBLE) AND isfinite({y}::DOUBLE)
ORDER BY md5(crop_id)
LIMIT $report_points

-- name: camelot
-- Crops per key on the Camelot wheel: all 24 positions (12 hours, A = minor inside, B = major outside),
-- named as the features stage spells keys (essentia's tonic with sharps), 0 where no crop is in that key.
WITH wheel(hour, ring, key_name) AS (VALUES
    (1, 'A', 'G# minor'), (1, 'B', 'B major'),   (2, 'A', 'D# minor'),  (2, 'B', 'F# major'),
    (3, 'A', 'A# minor'), (3, 'B', 'C# major'),  (4, 'A', 'F minor'),   (4, 'B', 'G# major'),
    (5, 'A', 'C minor'),  (5, 'B', 'D# major'),  (6, 'A', 'G minor'),   (6, 'B', 'A# major'),
    (7, 'A', 'D minor'),  (7, 'B', 'F major'),   (8, 'A', 'A minor'),   (8, 'B', 'C major'),
    (9, 'A', 'E minor'),  (9, 'B', 'G major'),   (10, 'A', 'B minor'),  (10, 'B', 'D major'),
    (11, 'A', 'F# minor'), (11, 'B', 'A major'), (12, 'A', 'C# minor'), (12, 'B', 'E major')),
     counted AS (SELECT key_camelot AS code, count(*) AS n FROM ({selected}) WHERE key_camelot IS NOT NULL GROUP BY ALL)
SELECT w.hour || w.ring AS code, w.hour, w.ring, w.key_name, coalesce(c.n, 0) AS n
FROM wheel AS w LEFT JOIN counted AS c ON c.code = w.hour || w.ring
ORDER BY w.hour, w.ring

-- name: top_values
-- The most frequent values of a text column (NULL left out) and how many selected crops hold each.
SELECT {value} AS label, count(*) AS n
FROM ({selected})
WHERE {value} IS NOT NULL
GROUP BY ALL
ORDER BY n DESC, label
LIMIT $report_top

-- name: top_list_values
-- The same over a list column (moods, instruments): a crop counts once for each label it holds.
SELECT label, count(*) AS n
FROM (SELECT unnest({value}) AS label FROM ({selected}))
WHERE label IS NOT NULL
GROUP BY ALL
ORDER BY n DESC, label
LIMIT $report_top

-- name: bpm_by_genre
-- Crops per (genre, BPM bin of $report_bpm_step) for the $report_top most frequent genres; <genre> is
-- the tag where the file has one, else the genre model's top label (as exports do).
WITH g AS (SELECT {genre} AS genre, bpm FROM ({selected}) WHERE isfinite(bpm)),
     top AS (SELECT genre, count(*) AS crops FROM g WHERE genre IS NOT NULL
             GROUP BY genre ORDER BY crops DESC, genre LIMIT $report_top)
SELECT genre, any_value(crops) AS genre_crops,
       floor(bpm / $report_bpm_step) * $report_bpm_step AS bpm_start,
       (floor(bpm / $report_bpm_step) + 1) * $report_bpm_step AS bpm_end, count(*) AS n
FROM g JOIN top USING (genre)
GROUP BY genre, bpm_start, bpm_end
ORDER BY genre_crops DESC, genre, bpm_start
