-- What makes `etl status` cheap on a large store: a stage's outputs carry a version that moves
-- whenever they may have changed, and a stage that finished a whole pass records the stage hash
-- and the upstream versions it was checked against. While both still hold, every item's stored
-- fingerprint is its current one, and counting needs no lineage joins (see etl/engine/lineage.py).

CREATE TABLE stage_marks (
    stage            VARCHAR PRIMARY KEY,
    outputs_version  BIGINT NOT NULL       -- bumped by every commit that writes or clears outputs
);

CREATE TABLE stage_checks (
    stage       VARCHAR PRIMARY KEY,
    stage_hash  VARCHAR NOT NULL,          -- parameters and code version of the finished pass
    upstream    VARCHAR NOT NULL           -- "<stage>=<outputs_version>,..." of the stages it reads
);
