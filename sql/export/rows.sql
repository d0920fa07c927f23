-- Exports read crops_v (or crops_all_v) through these statements. `{rows}` is the `rows` statement with its
-- splices filled in: the caller's WHERE clause (already through the read-only gate), the split
-- expression, and how this manifest writes an audio path. Values are bound ($export_split, ...).

-- name: rows
-- Durations are whole samples over the rate (23.02, never 23.019999999999996): `frames` / `sample_rate`.
SELECT c.* REPLACE ({manifest_path} AS path,
                   round(c.duration_s * c.sample_rate) / c.sample_rate AS duration_s),
       round(c.duration_s * c.sample_rate)::BIGINT AS frames,
       c.path AS source_path, {split} AS split, {prompt} AS prompt
FROM {view} AS c
WHERE ({where}
) AND {dedupe}

-- name: prompt
-- A crop's text prompt, the one every format carries (a column of csv, parquet and hf; `prompt` and
-- audiocraft's `description` in the sidecars, lhotse's custom fields, webdataset's JSON): the caption
-- where the captions stage wrote one, else what the store knows, most telling first: genre (the tag,
-- else the genre model's top label: "Electronic---House" reads "Electronic / House"), up to 3 moods
-- and 3 instruments (best first), voice, tempo, key, meter, title and artist. Empty text is no value.
CASE WHEN nullif(c.caption, '') IS NOT NULL THEN c.caption ELSE concat_ws(', ',
    coalesce(nullif(c.genre, ''), replace(nullif(c.genre_top, ''), '---', ' / ')),
    nullif(array_to_string(c.moods[1:3], ', '), ''),
    'with ' || nullif(array_to_string(c.instruments[1:3], ', '), ''),
    CASE WHEN c.voice = 'instrumental' THEN 'instrumental' END,
    CASE WHEN isfinite(c.bpm) AND round_even(c.bpm, 0) <> 0 THEN round_even(c.bpm, 0)::BIGINT || ' BPM' END,
    nullif(c.key_name, ''),
    CASE WHEN c.meter <> 0 THEN c.meter || '/4 time' END,
    nullif(concat_ws(' by ', nullif(c.title, ''), nullif(c.artist, '')), '')) END

-- name: folder_rows
-- The folders format names files Artist/Album/NN Title: the track number, and the track's source
-- name where it has no title tag, are the track's.
SELECT r.*, t.track_number, t.source_name
FROM ({rows}) AS r
LEFT JOIN tracks_all_v AS t USING (track_id)
ORDER BY r.track_id, r.crop_index

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
       coalesce(nullif(genre, ''), replace(nullif(genre_top, ''), '---', ' / ')) AS genre,  -- as `prompt` says it
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

-- name: has_duplicate_pairs_table
-- Near-duplicate pairs join split units where the fingerprint stage's table exists...
SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'duplicate_pairs'

-- name: has_duplicate_pairs
-- ...and holds any pair.
SELECT EXISTS (SELECT 1 FROM duplicate_pairs)

-- name: dedupe
-- `--dedupe`: a crop of a track that is not its duplicate group's best copy is left out
-- (duplicate_copies_v, the fingerprint stage's view, says which and why).
c.track_id NOT IN (SELECT track_id FROM duplicate_copies_v)

-- name: any_fingerprint
SELECT EXISTS (SELECT 1 FROM track_fingerprints)

-- name: copies_left_out
-- How many tracks `--dedupe` leaves out among those the condition selects (for export.json).
SELECT count(DISTINCT c.track_id) FROM ({rows_without_dedupe}) AS c
WHERE c.track_id IN (SELECT track_id FROM duplicate_copies_v)

-- name: duplicate_key_pairs
-- The group keys (`{key}`: plan.GROUP_KEYS, a constant) of the two tracks of every near-duplicate
-- pair, where they differ: the edges of the union-find that makes the split units. Every pair
-- counts, whatever --where selects, so the units (and so the splits) do not move with the selection.
WITH keys AS (SELECT DISTINCT c.track_id, {key} AS key FROM crops_all_v AS c)
SELECT a.key, b.key
FROM duplicate_pairs AS p
JOIN keys AS a ON a.track_id = p.track_id
JOIN keys AS b ON b.track_id = p.other_track_id
WHERE a.key <> b.key
