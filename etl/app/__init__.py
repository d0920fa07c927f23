"""The application layer: composes the stages (etl/stages/*) on the engine (etl/engine).

Layers point down only: cli → etl/app and etl/read → etl/stages/<name> → etl/engine, etl/dsp.
The engine knows what a stage is (etl/engine/stage.py) but imports none; this package finds them
(registry.py), assembles the store's schema from their folders (schema.py) and runs them (pipeline.py).
"""
