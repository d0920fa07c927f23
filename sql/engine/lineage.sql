-- Output fingerprints (stage_outputs) and superseded files, written by the engine only.

-- name: read_join
-- One upstream read: the output fingerprint of the key named by the item's `{key}` column.
-- (Several paths of one track give the same key: any of their equal fingerprints will do.)
LEFT JOIN (SELECT key, min(output_fp) AS output_fp FROM stage_outputs WHERE stage = '{stage}' GROUP BY key)
    AS read_{n} ON read_{n}.key = items.{key}

-- name: read_column
|| '|{stage}=' || coalesce(read_{n}.output_fp, '-')

-- name: clear_outputs
DELETE FROM stage_outputs WHERE stage = $stage AND item_id IN (SELECT item_id FROM cleared);

-- name: insert_outputs
INSERT INTO stage_outputs (stage, item_id, key, output_fp)
SELECT $stage, item_id, key, output_fp FROM output_batch;

-- name: supersede
INSERT INTO superseded_files (path, stage) SELECT path, $stage FROM superseded_batch;

-- name: list_superseded
SELECT DISTINCT path FROM superseded_files;

-- name: forget_superseded
DELETE FROM superseded_files WHERE path IN (SELECT path FROM removed_batch);

-- name: referenced_files
SELECT DISTINCT unnest(files) AS path FROM stage_items WHERE files IS NOT NULL;
