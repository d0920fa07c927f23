-- name: clear_tags
DELETE FROM track_tags WHERE track_id IN (SELECT item_id FROM cleared);

-- name: upsert_tags
-- Every column of track_tags the batch has (rows shaped like the table), the read time renewed.
INSERT OR REPLACE INTO track_tags BY NAME SELECT *, $params_hash AS params_hash, now() AS read_at FROM read_tags;
