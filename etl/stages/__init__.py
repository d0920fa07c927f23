"""The stages: one folder each (see docs/adding-a-stage.md). etl/app/registry.py finds them."""
