-- Crops worth a listen, each list at most $report_rows long. <columns> is the crop columns the
-- report shows that this store's crops_v has; <selected>: see store.sql. Ties break on crop_id.

-- name: quietest
SELECT {columns} FROM ({selected})
WHERE loudness_integrated_lufs IS NOT NULL
ORDER BY loudness_integrated_lufs, crop_id
LIMIT $report_rows

-- name: loudest
SELECT {columns} FROM ({selected})
WHERE loudness_integrated_lufs IS NOT NULL
ORDER BY loudness_integrated_lufs DESC, crop_id
LIMIT $report_rows

-- name: most_clipped
-- Only crops that clip at all (share of samples at or above -0.01 dBFS), the worst first.
SELECT {columns} FROM ({selected})
WHERE clipping_ratio > 0
ORDER BY clipping_ratio DESC, true_peak_dbtp DESC NULLS LAST, crop_id
LIMIT $report_rows

-- name: tempo_disagreements
-- The crop's own tempo estimate against the beat grid's: unrelated tempi first, then octave errors
-- (double, half, triple, third), the farthest apart first.
SELECT {columns} FROM ({selected})
WHERE bpm_relation IS NOT NULL AND bpm_relation <> 'same'
ORDER BY bpm_relation = 'unrelated' DESC, abs(ln(bpm_crop / bpm)) DESC NULLS LAST, crop_id
LIMIT $report_rows

-- name: samples
-- A sample of the selection: the same crops every time (ordered by a hash of the crop id).
SELECT {columns} FROM ({selected})
ORDER BY md5(crop_id)
LIMIT $report_rows
