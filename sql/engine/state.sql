-- The engine's bookkeeping over stage_items. `{items}` is replaced by the stage's own items
-- query (sql/stages/<stage>.sql, never user input); everything else is bound as parameters.

-- name: pending
-- Ids only: payloads (paths, beat lists...) are fetched batch by batch when claimed, so a run
-- over millions of items does not hold them all in memory.
WITH items AS ({items}),
state AS (SELECT item_id, status, fingerprint, attempts, retryable FROM stage_items WHERE stage = $stage)
SELECT items.item_id, md5($params_hash || '|' || items.input_fp) AS fingerprint,
       state.item_id IS NOT NULL AS has_state
FROM items LEFT JOIN state ON state.item_id = items.item_id
WHERE state.item_id IS NULL
   OR state.fingerprint IS DISTINCT FROM md5($params_hash || '|' || items.input_fp)
   OR state.status IN ('pending', 'running')
   OR (state.status = 'failed' AND state.attempts < $max_attempts AND (state.retryable OR $retry_failed))
ORDER BY items.item_id
LIMIT $limit;

-- name: payload
WITH items AS ({items})
SELECT items.* FROM items WHERE item_id IN (SELECT item_id FROM claimed_batch);

-- name: counts
WITH items AS ({items}),
state AS (SELECT item_id, status, fingerprint FROM stage_items WHERE stage = $stage),
joined AS (
    SELECT CASE
             WHEN state.item_id IS NULL THEN 'pending'
             WHEN state.status = 'running' THEN 'running'
             WHEN state.fingerprint IS DISTINCT FROM md5($params_hash || '|' || items.input_fp) THEN 'pending'
             ELSE state.status
           END AS status
    FROM items LEFT JOIN state ON state.item_id = items.item_id
)
SELECT
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'done') AS done,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'skipped') AS skipped
FROM joined;

-- name: reset_running
-- Only one run holds the run lock, so any 'running' row belongs to a run that died.
UPDATE stage_items SET status = 'pending' WHERE stage = $stage AND status = 'running';

-- name: claim_new
INSERT INTO stage_items (stage, item_id, status, run_id, claimed_at)
SELECT $stage, item_id, 'running', $run_id, now() FROM claimed_batch WHERE NOT has_state;

-- name: claim_existing
UPDATE stage_items SET status = 'running', run_id = $run_id, claimed_at = now()
FROM claimed_batch
WHERE claimed_batch.has_state AND stage_items.stage = $stage AND stage_items.item_id = claimed_batch.item_id;

-- name: finish
-- Every finished item was claimed first, so its row exists.
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
    finished_at = now()
FROM finished_batch AS b
WHERE stage_items.stage = $stage AND stage_items.item_id = b.item_id;

-- name: release
-- Ctrl-C: items this run claimed but did not finish go back to the queue.
UPDATE stage_items SET status = 'pending' WHERE stage = $stage AND status = 'running' AND run_id = $run_id;

-- name: failures
SELECT stage, item_id, path, last_error AS reason, attempts, retryable, finished_at
FROM failures_v
WHERE $stage IS NULL OR stage = $stage
ORDER BY stage, path, item_id;
