from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from etl.engine import migrations
from etl.engine.errors import DatabaseError
from etl.engine.resources import schema_dir
from etl.engine.store import open_reader, open_writer

EXPECTED_COLUMNS = {
    "schema_migrations": {"version", "name", "checksum", "applied_at"},
    "sources": {"path", "added_at"},
    "files": {"path", "source", "size_bytes", "mtime_ns", "scan_error", "present", "track_id",
              "first_seen_at", "last_seen_at", "ctime_ns", "inode", "stat_version", "missing_since", "sha256",
              "sample_hash", "ingested_size_bytes", "ingested_mtime_ns", "multitrack_group", "multitrack_role",
              "multitrack_stem", "multitrack_layout", "audio_sha256"},
    "tracks": {"track_id", "size_bytes", "container", "codec", "duration_s", "frames", "sample_rate",
               "channels", "bit_rate_kbps", "decode_checked", "params_hash", "ingested_at", "identity"},
    "track_tags": {"track_id", "tag_format", "artist", "title", "album", "album_artist", "year", "date_text",
                   "genre", "track_number", "track_total", "disc_number", "compilation", "bpm_tag", "key_tag",
                   "params_hash", "read_at", "raw_tags"},
    "stage_items": {"stage", "item_id", "status", "fingerprint", "params_hash", "attempts", "last_error",
                    "retryable", "run_id", "elapsed_s", "claimed_at", "finished_at", "files", "claimed_from"},
    "stage_outputs": {"stage", "item_id", "key", "output_fp"},
    "superseded_files": {"path", "stage", "superseded_at"},
    "stage_marks": {"stage", "outputs_version"},
    "stage_checks": {"stage", "stage_hash", "upstream"},
    "store_settings": {"key", "value"},
    "runs": {"run_id", "pid", "host", "argv", "started_at", "finished_at", "outcome"},
    "beat_grids": {"track_id", "beat_times_s", "beat_positions", "downbeat_times_s", "meter", "bpm",
                   "bpm_confidence", "tempo_steady", "pulse_strength", "n_beats", "n_bars", "params_hash",
                   "created_at", "bpm_method"},
    "crops": {"crop_id", "track_id", "crop_index", "mode", "start_sample", "end_sample", "start_s", "end_s",
              "duration_s", "n_bars", "n_beats", "bpm", "beat_times_s", "beat_positions", "downbeat_times_s",
              "path", "format", "sample_rate", "channels", "params_hash", "created_at", "sha256",
              "bpm_method", "source_peak_dbfs", "over_full_scale"},
    "crop_stems": {"crop_id", "stem", "track_id", "path", "format", "sample_rate", "channels", "params_hash",
                   "sha256"},
    "crop_features": {
        "crop_id", "track_id", "loudness_hash", "loudness_integrated_lufs", "loudness_range_lu",
        "loudness_short_term_max_lufs", "true_peak_dbtp", "sample_peak_dbfs", "rms_dbfs", "crest_factor_db",
        "clipping_ratio", "spectral_hash", "spectral_centroid_hz", "spectral_bandwidth_hz", "spectral_rolloff_hz",
        "spectral_flatness", "spectral_flux", "zero_crossing_rate", "mfcc_mean", "band_bass_rms_dbfs",
        "band_low_mid_rms_dbfs", "band_mid_rms_dbfs", "band_air_rms_dbfs", "tonal_hash", "chroma_mean",
        "key_tonic", "key_mode", "key_strength", "key_name", "key_camelot", "rhythm_hash", "bpm_grid",
        "bpm_crop", "bpm_agrees", "onset_rate_hz", "danceability", "series_hash", "series_loudness_lufs",
        "series_rms_dbfs", "series_centroid_hz", "bpm_relation"},
    "crop_stem_features": {
        "crop_id", "stem", "loudness_integrated_lufs", "sample_peak_dbfs", "rms_dbfs", "crest_factor_db",
        "spectral_centroid_hz", "spectral_flatness", "band_bass_rms_dbfs", "band_low_mid_rms_dbfs",
        "band_mid_rms_dbfs", "band_air_rms_dbfs", "params_hash"},
    "track_stems": {
        "track_id", "stem", "path", "format", "sample_rate", "channels", "frames", "loudness_integrated_lufs",
        "sample_peak_dbfs", "rms_dbfs", "crest_factor_db", "empty", "folded_into", "model", "params_hash",
        "created_at", "sha256", "source", "given_as", "alignment", "sdr_db"},
    "multitrack_groups": {
        "group_id", "track_id", "layout", "mix", "mix_path", "mix_sha256", "mix_sample_hash", "mix_size_bytes",
        "mix_mtime_ns", "tags_path", "n_stems", "note", "params_hash", "created_at"},
    "crop_classes": {
        "crop_id", "track_id", "head", "embedding_model", "labels", "scores", "top", "params_hash"},
    "crop_embeddings": {"crop_id", "track_id", "embedding_model", "embedding"},
    "crop_aesthetics": {
        "crop_id", "track_id", "aes_ce", "aes_cu", "aes_pc", "aes_pq", "windows", "checkpoint_sha256", "params_hash"},
    "crop_midi": {
        "crop_id", "source", "track_id", "path", "sha256", "n_notes", "pitch_min", "pitch_max", "mean_polyphony",
        "note_density_per_s", "pitch_class_histogram", "params_hash"},
    "crop_midi_notes": {
        "crop_id", "source", "note_index", "start_s", "end_s", "pitch", "velocity", "start_beat", "end_beat", "bar",
        "beat_in_bar"},
    "crop_chords": {
        "crop_id", "track_id", "chord_model", "chords", "beat_chords", "chords_text", "key_madmom",
        "key_madmom_camelot", "key_madmom_confidence", "key_madmom_scores", "params_hash"},
}
EXPECTED_VIEWS = {"tracks_v", "failures_v", "stage_status_v", "track_paths_v", "crops_v", "crop_midi_v"}


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE'"
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def test_all_migrations_build_the_expected_schema(db: Path) -> None:
    writer = open_writer(db, create=True)
    try:
        assert _columns(writer.con) == EXPECTED_COLUMNS
        views = {r[0] for r in writer.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'").fetchall()}
        assert EXPECTED_VIEWS <= views
        applied = writer.con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert [(m.version, m.name) for m in migrations.known_migrations()] == applied
    finally:
        writer.close()


def test_applying_twice_is_a_no_op(db: Path) -> None:
    open_writer(db, create=True).close()
    writer = open_writer(db, create=True)
    assert writer.applied_migrations == []
    writer.close()


def test_migrations_are_numbered_and_unique() -> None:
    found = migrations.known_migrations()
    assert found and [m.version for m in found] == sorted({m.version for m in found})


def test_database_newer_than_the_code_is_refused(db: Path) -> None:
    open_writer(db, create=True).close()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'from_the_future', 'x')")
    con.close()
    with pytest.raises(DatabaseError, match="newer|only knows up to"):
        open_writer(db, create=True)
    with pytest.raises(DatabaseError, match="upgrade etl"):
        with open_reader(db):
            pass


def test_edited_migration_is_refused(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "schema"
    shutil.copytree(schema_dir(), folder)
    con = duckdb.connect(str(db))
    migrations.apply_pending(con, migrations.known_migrations(folder))
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(DatabaseError, match="changed after it was applied"):
        migrations.check(con, migrations.known_migrations(folder))
    con.close()


def test_a_failing_migration_leaves_nothing_applied(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "schema"
    shutil.copytree(schema_dir(), folder)
    (folder / "900_broken.sql").write_text("CREATE TABLE ok_table (x INTEGER);\nTHIS IS NOT SQL;")
    con = duckdb.connect(str(db))
    with pytest.raises(duckdb.Error):
        migrations.apply_pending(con, migrations.known_migrations(folder))
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "ok_table" not in tables and "tracks" not in tables
    con.close()


def test_missing_and_corrupt_databases_get_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no database at"):
        with open_reader(tmp_path / "absent.duckdb"):
            pass
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(DatabaseError, match="corrupt.duckdb"):
        open_writer(corrupt, create=True)
    with pytest.raises(DatabaseError, match="corrupt.duckdb"):
        with open_reader(corrupt):
            pass
