-- Every failed item with the file it concerns.
CREATE OR REPLACE VIEW failures_v AS
SELECT si.stage, si.item_id,
       coalesce(f.path, tp.path, si.item_id) AS path,
       si.last_error, si.attempts, si.retryable, si.finished_at
FROM stage_items AS si
LEFT JOIN files AS f ON si.stage = 'ingest' AND f.path = si.item_id
LEFT JOIN (SELECT track_id, min(path) AS path FROM files WHERE track_id IS NOT NULL GROUP BY track_id) AS tp
       ON tp.track_id = si.item_id
WHERE si.status = 'failed'
