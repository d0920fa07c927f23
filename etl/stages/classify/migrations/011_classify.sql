-- classify (per crop): the scores of every installed essentia classification head over the crop's
-- Discogs-EffNet embedding. One row per (crop, head) with list columns: the head's labels in its
-- metadata's order, the score of each (same order), and the top labels (best first). Labels come
-- from the head's own metadata JSON, so a row carries them (a head's label set is fixed per model
-- file; DuckDB dictionary-compresses repeated lists poorly, but one row per head keeps a crop's
-- scores one lookup away and `list_zip(labels, scores)` gives the pairs).
CREATE TABLE crop_classes (
    crop_id          VARCHAR NOT NULL,
    track_id         VARCHAR NOT NULL,
    head             VARCHAR NOT NULL,       -- the head model's name, e.g. genre_discogs400-discogs-effnet-1
    embedding_model  VARCHAR NOT NULL,       -- e.g. discogs-effnet-bs64-1
    labels           VARCHAR[] NOT NULL,
    scores           FLOAT[] NOT NULL,
    top              STRUCT(label VARCHAR, score FLOAT)[] NOT NULL,
    params_hash      VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, head)
);
