"""The `etl` command line."""
