-- A crop's classes (and its embedding, when stored) are replaced as a whole.

-- name: clear_classes
DELETE FROM crop_classes WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: clear_embeddings
DELETE FROM crop_embeddings WHERE crop_id IN (SELECT item_id FROM cleared);

-- name: insert_classes
INSERT INTO crop_classes BY NAME SELECT *, $params_hash AS params_hash FROM new_classes;

-- name: insert_embeddings
INSERT INTO crop_embeddings BY NAME SELECT * FROM new_embeddings;
