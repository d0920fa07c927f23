"""music-etl: a resumable DuckDB feature store of beat-aligned training crops."""

__version__ = "0.1.0"
