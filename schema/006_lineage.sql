-- Lineage: what each committed item produced, the files it owns, and files waiting for removal.
-- The engine (not the stages) writes these tables; see etl/engine.py and sql/engine/lineage.sql.

-- One row per (stage, item, key) an item produced: `key` is what downstream items name when they
-- read this stage (a track id, a crop id), `output_fp` a hash of what was produced under it (its
-- result rows and the content hashes of its files). A downstream item's fingerprint is computed
-- from the output_fp of the keys it reads, so a change that produces the same output stops there.
CREATE TABLE stage_outputs (
    stage      VARCHAR NOT NULL,
    item_id    VARCHAR NOT NULL,
    key        VARCHAR NOT NULL,
    output_fp  VARCHAR NOT NULL
);

-- The artifact files an item's committed result names (relative to the data folder): after a
-- commit every other file in the item's folder is superseded.
ALTER TABLE stage_items ADD COLUMN files VARCHAR[];

-- Files superseded by a committed transaction, removed right after it (and at the start of the
-- next run when a run was killed between the commit and the removal). Relative to the data folder.
CREATE TABLE superseded_files (
    path           VARCHAR NOT NULL,
    stage          VARCHAR NOT NULL,
    superseded_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Content hashes of artifact files (sha256, hex): what a file holds, also part of its name.
ALTER TABLE crops ADD COLUMN sha256 VARCHAR;
ALTER TABLE crop_stems ADD COLUMN sha256 VARCHAR;
ALTER TABLE track_stems ADD COLUMN sha256 VARCHAR;
