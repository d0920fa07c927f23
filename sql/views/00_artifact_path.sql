-- Artifact paths are stored relative to the data folder, so that the database and its data folder
-- can move together. `artifact_path(path)` makes one absolute: the data folder recorded in
-- store_settings (absolute, or relative to the folder holding this database file) joined to it.
-- Works in any DuckDB client that opens the file, not only through etl.
CREATE OR REPLACE MACRO store_folder() AS (
    SELECT parse_dirpath(path) FROM duckdb_databases() WHERE database_name = current_database()
);

CREATE OR REPLACE MACRO data_folder() AS (
    SELECT CASE WHEN starts_with(d.value, '/') THEN d.value ELSE store_folder() || '/' || d.value END
    FROM (SELECT coalesce((SELECT value FROM store_settings WHERE key = 'data_dir'), 'etl-data') AS value) AS d
);

CREATE OR REPLACE MACRO artifact_path(path) AS
    CASE WHEN path IS NULL OR starts_with(path, '/') THEN path ELSE data_folder() || '/' || path END;
