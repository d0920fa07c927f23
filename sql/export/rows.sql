-- Exports read crops_v (or crops_all_v) through these statements. `{rows}` is the `rows` statement with its
-- splices filled in: the caller's WHERE clause (already through the read-only gate), the split
-- expression, and how this manifest writes an audio path. Values are bound ($export_split, ...).

-- name: rows
-- Durations are whole samples over the rate (23.02, never 23.019999999999996): `frames` / `sample_rate`.
SELECT c.* REPLACE ({manifest_path} AS path,
                   round(c.duration_s * c.sample_rate) / c.sample_rate AS duration_s),
       round(c.duration_s * c.sample_rate)::BIGINT AS frames,
       c.path AS source_path, {split} AS split
FROM {view} AS c
WHERE ({where}
)

-- name: ordered_rows
SELECT *
FROM ({rows})
ORDER BY track_id, crop_index

-- name: path_range
-- Every crop file shares this range's common folder: relative paths are computed from it.
SELECT artifact_path(min(path)), artifact_path(max(path)) FROM crops

-- name: split_counts_parquet
SELECT split, count(*) FROM read_parquet($export_file) GROUP BY split

-- name: split_counts_csv
SELECT split, count(*) FROM read_csv($export_file, header = true, all_varchar = true) GROUP BY split

-- name: table
-- Statements written by COPY keep the store's order (DuckDB preserves insertion order without
-- ORDER BY), which is deterministic for a given store; an ORDER BY would double an export's time.
-- `{private}` adds source_path and track_path to the excluded columns unless --include-source-paths.
SELECT * EXCLUDE (frames{private})
FROM ({rows})

-- name: split_rows
SELECT *
FROM ({rows})
WHERE split IS NOT DISTINCT FROM $export_split
ORDER BY track_id, crop_index

-- name: audiocraft_lines
-- audiocraft's AudioMeta fields first (it ignores the rest), then what a reader may filter on.
SELECT path, duration_s AS duration, sample_rate, NULL::DOUBLE AS amplitude, NULL::DOUBLE AS weight,
       NULL::VARCHAR AS info_path,
       crop_id, track_id, artist, title, album,
       coalesce(genre, replace(genre_top, '---', ' / ')) AS genre,  -- the tag, else the model's (metadata.genre)
       bpm, key_name AS "key", loudness_integrated_lufs
FROM ({rows})
WHERE split IS NOT DISTINCT FROM $export_split

-- name: audiofolder_metadata
-- Hugging Face audiofolder: metadata.parquet (typed: an all-empty tag column stays text), `file_name`
-- relative to it and inside its folder, then the crop's columns (long per-beat and per-frame lists left out:
-- `{long_lists}` are the stages', from their views.sql).
SELECT path AS file_name,
       * EXCLUDE (path, frames, split{private}, beat_times_s, beat_positions, downbeat_times_s, stems{long_lists})
FROM ({rows})
WHERE split IS NOT DISTINCT FROM $export_split
