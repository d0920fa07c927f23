-- Items of the captions stage: one per (crop, prompt kind), id `<crop_id>/<kind>`. Bound by the
-- stage (etl/stages/captions/__init__.py item_binds): `$prompts`, the enabled kinds with the fingerprint of
-- each one's template and max tokens (the item's `input_fp`: an edited template re-queues its own
-- kind only; a kind switched off is retired), and `$sample_fraction`.
--
-- Sampling: a crop that already has captions state stays in; of the crops without any, the first
-- ceil(sample_fraction x their number) by md5(crop_id) come in. So each run takes a deterministic
-- fraction of the uncaptioned crops, and a big store is captioned over several runs.
--
-- The payload carries the crop's row of crops_all_v as `facts` (every column it has, whichever
-- stages exist in this store, less the long numeric lists and the caption itself): the template's
-- placeholders are filled from it. What the facts came from is in the lineage (`reads`).
WITH started AS (
    SELECT DISTINCT split_part(item_id, '/', 1) AS crop_id FROM stage_items WHERE stage = 'captions'
),
ranked AS (
    SELECT c.crop_id, c.track_id, artifact_path(c.path) AS path, c.sha256, s.crop_id IS NOT NULL AS started,
           row_number() OVER (PARTITION BY s.crop_id IS NULL ORDER BY md5(c.crop_id), c.crop_id) AS hash_rank,
           count(*) FILTER (WHERE s.crop_id IS NULL) OVER () AS uncaptioned
    FROM crops AS c
    LEFT JOIN started AS s USING (crop_id)
),
admitted AS (
    SELECT * FROM ranked WHERE started OR hash_rank <= ceil($sample_fraction * uncaptioned)
),
prompts AS (
    SELECT p.kind, p.fingerprint
    FROM (SELECT unnest(CAST($prompts AS STRUCT(kind VARCHAR, fingerprint VARCHAR)[])) AS p)
),
facts AS (
    -- Joined to the crops before the kinds multiply them: one row of crops_all_v per crop.
    SELECT a.*, v.facts
    FROM admitted AS a
    LEFT JOIN (SELECT f.crop_id, f AS facts
               FROM (SELECT COLUMNS(lambda c: c NOT IN ('path', 'track_path', 'midi_path', 'caption', 'beat_times_s',
                                                        'beat_positions', 'downbeat_times_s', 'mfcc_mean',
                                                        'chroma_mean', 'raw_tags', 'beat_chords', 'chord_segments')
                                              AND NOT starts_with(c, 'series_'))
                     FROM crops_all_v) AS f) AS v USING (crop_id)
)
SELECT c.crop_id || '/' || p.kind AS item_id, p.fingerprint AS input_fp, c.crop_id, c.track_id, c.path, c.sha256,
       p.kind, c.facts
FROM facts AS c
CROSS JOIN prompts AS p
