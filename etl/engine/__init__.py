"""The engine: the coordinator (runner), executors (pool), the store's connections and locks
(store), migrations, configuration, the Stage declaration (stage), lineage and artifacts, and the
one error hierarchy (errors). Kept free of imports so that `etl query` loads only what it uses."""
