-- fingerprint (per track): Chromaprint's fingerprint of the whole track, the inverted index the
-- duplicate search joins through, and the near-duplicate pairs it found. Groups are the connected
-- components of the pairs (duplicate_groups_v, views.sql).
CREATE TABLE track_fingerprints (
    track_id      VARCHAR PRIMARY KEY,
    algorithm     INTEGER NOT NULL,        -- Chromaprint's algorithm version (decode_fingerprint's)
    item_s        DOUBLE NOT NULL,         -- seconds between sub-fingerprints (Chromaprint's hop)
    n_items       INTEGER NOT NULL,
    fingerprint   UINTEGER[] NOT NULL,     -- the 32-bit sub-fingerprints, ~8 per second
    params_hash   VARCHAR NOT NULL
);

-- One row per informative sub-fingerprint (one that differs from the one before it: silence and
-- held notes repeat a value and would match anything), keyed by its top [fingerprint] key_bits bits.
-- No PRIMARY KEY or index: DuckDB joins it by hash, and an ART index would only slow the inserts.
CREATE TABLE fingerprint_index (
    track_id      VARCHAR NOT NULL,
    pos           INTEGER NOT NULL,        -- index into track_fingerprints.fingerprint, from 0
    key           UINTEGER NOT NULL        -- the sub-fingerprint's top key_bits bits
);

-- Near-duplicate pairs, each once (track_id < other_track_id): the recordings match over
-- `matched_share` of the shorter one's sub-fingerprints when `other_track_id` starts `offset_s`
-- seconds into `track_id` (negative: before it starts).
CREATE TABLE duplicate_pairs (
    track_id        VARCHAR NOT NULL,
    other_track_id  VARCHAR NOT NULL,
    offset_s        DOUBLE NOT NULL,
    matched_share   DOUBLE NOT NULL,       -- aligned sub-fingerprints within max_bit_errors, over the shorter's count
    bit_error_rate  DOUBLE NOT NULL,       -- mean differing bits per aligned pair / 32 (unrelated audio: ~0.5)
    params_hash     VARCHAR NOT NULL,
    PRIMARY KEY (track_id, other_track_id)
);
