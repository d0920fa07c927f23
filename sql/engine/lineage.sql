-- Output fingerprints (stage_outputs) and superseded files, written by the engine only.

-- name: read_join
-- One upstream read: the output fingerprint of the key named by the item's `{key}` column. Each
-- key belongs to one upstream item, so one row at most.
LEFT JOIN stage_outputs AS read_{n} ON read_{n}.stage = '{stage}' AND read_{n}.key = items.{key}

-- name: read_join_shared
-- The same, for a stage whose items may produce the same key (ingest: several paths holding the
-- same audio give one track): any of their equal fingerprints will do.
LEFT JOIN (SELECT key, min(output_fp) AS output_fp FROM stage_outputs WHERE stage = '{stage}' GROUP BY key)
    AS read_{n} ON read_{n}.key = items.{key}

-- name: read_column
|| '|{stage}=' || coalesce(read_{n}.output_fp, '-')

-- name: read_column_optional
-- An optional read (`Read(optional=True)`): nothing where the upstream produced nothing for the key.
|| coalesce('|{stage}=' || read_{n}.output_fp, '')

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

-- name: stages_with_items
-- The stages that have written items: their folders under the data folder are the store's.
SELECT DISTINCT stage FROM stage_items;

-- name: referenced_files
SELECT DISTINCT unnest(files) AS path FROM stage_items WHERE files IS NOT NULL;

-- name: bump_outputs
INSERT INTO stage_marks VALUES ($stage, 1)
ON CONFLICT (stage) DO UPDATE SET outputs_version = stage_marks.outputs_version + 1;

-- name: outputs_versions
SELECT stage, outputs_version FROM stage_marks;

-- name: forget_check
DELETE FROM stage_checks WHERE stage = $stage;

-- name: record_check
INSERT INTO stage_checks VALUES ($stage, $stage_hash, $upstream)
ON CONFLICT (stage) DO UPDATE SET stage_hash = excluded.stage_hash, upstream = excluded.upstream;

-- name: check
SELECT stage_hash, upstream FROM stage_checks WHERE stage = $stage;
