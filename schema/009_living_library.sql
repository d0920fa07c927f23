-- A living library: files that change, move and get re-tagged; a store that moves.

-- What the scan saw, beyond size and mtime: ctime and inode change whenever a file is rewritten or
-- replaced, even by a tool that puts size and mtime back. `stat_version` counts the changes the
-- scan saw; it is the ingest item's input, so `etl sources move` can rewrite a path (and its stat)
-- without making the file look changed.
ALTER TABLE files ADD COLUMN ctime_ns BIGINT;
ALTER TABLE files ADD COLUMN inode BIGINT;
ALTER TABLE files ADD COLUMN stat_version INTEGER DEFAULT 0;
-- When a scan of a reachable source first found the path gone (NULL while present): `etl gc`
-- forgets paths missing for longer than [gc] missing_grace_days.
ALTER TABLE files ADD COLUMN missing_since TIMESTAMP;

-- What ingest saw when it identified the file: every later stage checks the file is still this
-- one (size, mtime, sampled hash) before and after reading it. `sha256` is over all the bytes
-- (tags included: the metadata stage's input); the track id is over the audio only.
ALTER TABLE files ADD COLUMN sha256 VARCHAR;
ALTER TABLE files ADD COLUMN sample_hash VARCHAR;
ALTER TABLE files ADD COLUMN ingested_size_bytes BIGINT;
ALTER TABLE files ADD COLUMN ingested_mtime_ns BIGINT;

-- How the track id (the hash of the audio) was taken: mp3-frames, flac-frames, ogg-packets,
-- riff-chunks, aiff-chunks, mp4-mdat, decoded-pcm or bytes (see etl/dsp/identity.py).
ALTER TABLE tracks ADD COLUMN identity VARCHAR;

-- Facts about the store itself, e.g. `data_dir`: the artifact folder as configured when the rows
-- were written (relative to the database's folder, or absolute). Artifact paths in rows are
-- relative to it; views resolve them (sql/views/00_artifact_path.sql), so the database and its
-- data folder can move together.
CREATE TABLE store_settings (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);

-- Artifact paths were absolute: keep their last four parts (<stage>/<id[:2]>/<id>/<file>, the
-- layout of etl/engine/artifacts.py item_folder), relative to the data folder.
UPDATE crops SET path = array_to_string(string_split(path, '/')[-4:], '/') WHERE starts_with(path, '/');
UPDATE crop_stems SET path = array_to_string(string_split(path, '/')[-4:], '/') WHERE starts_with(path, '/');
UPDATE track_stems SET path = array_to_string(string_split(path, '/')[-4:], '/') WHERE starts_with(path, '/');
