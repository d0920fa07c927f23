-- The engine's bookkeeping over stage_items. `{items}` is replaced by the stage's own items
-- query (sql/stages/<stage>.sql, never user input); everything else is bound as parameters.

-- name: pending
WITH items AS ({items}),
state AS (SELECT item_id, status, fingerprint, attempts, retryable FROM stage_items WHERE stage = $stage)
SELECT items.*, md5($params_hash || '|' || items.input_fp) AS fingerprint
FROM items LEFT JOIN state ON state.item_id = items.item_id
WHERE state.item_id IS NULL
   OR state.fingerprint IS DISTINCT FROM md5($params_hash || '|' || items.input_fp)
   OR state.status IN ('pending', 'running')
   OR (state.status = 'failed' AND state.attempts < $max_attempts AND (state.retryable OR $retry_failed))
ORDER BY items.item_id
LIMIT $limit;

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

-- name: claim
INSERT INTO stage_items (stage, item_id, status, run_id, claimed_at)
SELECT $stage, item_id, 'running', $run_id, now() FROM claimed_batch
ON CONFLICT (stage, item_id) DO UPDATE SET
    status = 'running', run_id = excluded.run_id, claimed_at = excluded.claimed_at;

-- name: finish
INSERT INTO stage_items (stage, item_id, status, fingerprint, params_hash, attempts, last_error,
                         retryable, run_id, elapsed_s, finished_at)
SELECT $stage, item_id, status, fingerprint, $params_hash, 1, error, retryable, $run_id, elapsed_s, now()
FROM finished_batch
ON CONFLICT (stage, item_id) DO UPDATE SET
    status = excluded.status,
    -- attempts count tries of the same input with the same parameters
    attempts = CASE WHEN stage_items.fingerprint IS NOT DISTINCT FROM excluded.fingerprint
                    THEN stage_items.attempts + 1 ELSE 1 END,
    fingerprint = excluded.fingerprint,
    params_hash = excluded.params_hash,
    last_error = excluded.last_error,
    retryable = excluded.retryable,
    run_id = excluded.run_id,
    elapsed_s = excluded.elapsed_s,
    finished_at = excluded.finished_at;

-- name: release
-- Ctrl-C: items this run claimed but did not finish go back to the queue.
UPDATE stage_items SET status = 'pending' WHERE stage = $stage AND status = 'running' AND run_id = $run_id;

-- name: failures
SELECT stage, item_id, path, last_error AS reason, attempts, retryable, finished_at
FROM failures_v
WHERE $stage IS NULL OR stage = $stage
ORDER BY stage, path, item_id;
