-- The engine's bookkeeping over stage_items. `{items}` is replaced by the stage's own items
-- query (etl/stages/<stage>/items.sql, never user input) and `{lineage_*}` by the joins that read the
-- upstream outputs the stage declares (sql/engine/lineage.sql); everything else is bound.
--
-- An item's fingerprint hashes the stage's hash (parameters and code version), the item's own
-- input (`input_fp`) and the output fingerprint of every upstream key it reads. Nothing here is
-- written by a stage.
--
-- `{present}` is the items query's `present` column for stages that declare `presence` (true
-- otherwise): an item whose source file is gone is held, neither claimed nor retired, and counted
-- as missing.

-- name: pending
-- Ids only: payloads (paths, beat lists...) are fetched batch by batch when claimed, so a run
-- over millions of items does not hold them all in memory.
WITH items AS ({items}),
fingerprinted AS (
    SELECT items.item_id, {present} AS present,
           md5($stage_hash || '|' || coalesce(CAST(items.input_fp AS VARCHAR), '') {lineage_columns})
               AS fingerprint
    FROM items {lineage_joins}
),
state AS (SELECT item_id, status, fingerprint, attempts, retryable FROM stage_items WHERE stage = $stage)
SELECT f.item_id, f.fingerprint, state.item_id IS NOT NULL AS has_state
FROM fingerprinted AS f LEFT JOIN state ON state.item_id = f.item_id
WHERE f.present
  AND (state.item_id IS NULL
       OR state.fingerprint IS DISTINCT FROM f.fingerprint
       OR state.status IN ('pending', 'running')
       OR (state.status = 'failed' AND state.attempts < $max_attempts AND (state.retryable OR $retry_failed)))
ORDER BY f.item_id
LIMIT $limit;

-- name: payload
WITH items AS ({items})
SELECT items.* FROM items WHERE item_id IN (SELECT item_id FROM claimed_batch);

-- name: counts
WITH items AS ({items}),
fingerprinted AS (
    SELECT items.item_id, {present} AS present,
           md5($stage_hash || '|' || coalesce(CAST(items.input_fp AS VARCHAR), '') {lineage_columns})
               AS fingerprint
    FROM items {lineage_joins}
),
state AS (SELECT item_id, status, fingerprint FROM stage_items WHERE stage = $stage),
joined AS (
    SELECT CASE
             WHEN NOT f.present THEN 'missing'
             WHEN state.item_id IS NULL THEN 'pending'
             WHEN state.status = 'running' THEN 'running'
             WHEN state.fingerprint IS DISTINCT FROM f.fingerprint THEN 'pending'
             ELSE state.status
           END AS status
    FROM fingerprinted AS f LEFT JOIN state ON state.item_id = f.item_id
)
SELECT
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'done') AS done,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'skipped') AS skipped,
    count(*) FILTER (WHERE status = 'missing') AS missing
FROM joined;

-- name: counts_checked
-- The counts of a stage whose last whole pass still holds (same stage hash, unchanged upstream
-- outputs): each item's stored fingerprint is its current one, so its stored status stands.
-- An item with an input of its own (`input_fp`) could have changed without its upstream:
-- `unchecked` counts those, and the caller falls back to `counts` when there are any.
WITH items AS ({items}),
state AS (SELECT item_id, status FROM stage_items WHERE stage = $stage),
joined AS (
    SELECT CASE WHEN NOT {present} THEN 'missing' ELSE coalesce(state.status, 'pending') END AS status,
           items.input_fp IS NOT NULL AS unchecked
    FROM items LEFT JOIN state ON state.item_id = items.item_id
)
SELECT
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'done') AS done,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'skipped') AS skipped,
    count(*) FILTER (WHERE status = 'missing') AS missing,
    count(*) FILTER (WHERE unchecked) AS unchecked
FROM joined;

-- name: gone
-- Items the stage has state for that its items query no longer yields (the file went away, the
-- track was replaced, the crop is no longer cut): they are retired.
WITH items AS ({items})
SELECT s.item_id, s.files FROM stage_items AS s
WHERE s.stage = $stage AND NOT EXISTS (SELECT 1 FROM items WHERE items.item_id = s.item_id);

-- name: retire
DELETE FROM stage_items WHERE stage = $stage AND item_id IN (SELECT item_id FROM cleared);

-- name: reset_running
-- Only one run holds the run lock, so any 'running' row belongs to a run that died: back to what
-- it was before the claim (a fingerprint that no longer matches still makes it pending).
UPDATE stage_items SET status = coalesce(claimed_from, 'pending') WHERE stage = $stage AND status = 'running';

-- name: claim_new
INSERT INTO stage_items (stage, item_id, status, run_id, claimed_at)
SELECT $stage, item_id, 'running', $run_id, now() FROM claimed_batch WHERE NOT has_state;

-- name: claim_existing
UPDATE stage_items SET claimed_from = status, status = 'running', run_id = $run_id, claimed_at = now()
FROM claimed_batch
WHERE claimed_batch.has_state AND stage_items.stage = $stage AND stage_items.item_id = claimed_batch.item_id;

-- name: finish
-- Every finished item was claimed first, so its row exists. A failed item keeps the files of its
-- last good result (that result's rows stay too).
UPDATE stage_items SET
    status = b.status,
    -- attempts count tries of the same input with the same parameters
    attempts = CASE WHEN stage_items.fingerprint IS NOT DISTINCT FROM b.fingerprint
                    THEN stage_items.attempts + 1 ELSE 1 END,
    fingerprint = b.fingerprint,
    params_hash = $params_hash,
    last_error = b.error,
    retryable = b.retryable,
    run_id = $run_id,
    elapsed_s = b.elapsed_s,
    finished_at = now(),
    files = CASE WHEN b.status = 'failed' THEN stage_items.files ELSE b.files END
FROM finished_batch AS b
WHERE stage_items.stage = $stage AND stage_items.item_id = b.item_id;

-- name: committed_files
-- What the finished items' folders must keep after this commit.
SELECT item_id, files FROM stage_items
WHERE stage = $stage AND item_id IN (SELECT item_id FROM finished_batch);

-- name: release
-- Ctrl-C: items this run claimed but did not finish go back to what they were before the claim.
UPDATE stage_items SET status = coalesce(claimed_from, 'pending')
WHERE stage = $stage AND status = 'running' AND run_id = $run_id;

-- name: failures
SELECT stage, item_id, path, last_error AS reason, attempts, retryable, finished_at
FROM failures_v
WHERE $stage IS NULL OR stage = $stage
ORDER BY stage, path, item_id;

-- name: rename_items
-- `renamed` (old_id, new_id): an item whose id changed but whose input and result did not (a file
-- moved with `etl sources move`): its state and outputs follow it.
UPDATE stage_items SET item_id = renamed.new_id FROM renamed
WHERE stage_items.stage = $stage AND stage_items.item_id = renamed.old_id;

-- name: rename_outputs
UPDATE stage_outputs SET item_id = renamed.new_id FROM renamed
WHERE stage_outputs.stage = $stage AND stage_outputs.item_id = renamed.old_id;
