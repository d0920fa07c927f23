-- aesthetics (per crop): Meta's AudioBox Aesthetics scores of the crop (1-10 scale, the weighted mean
-- over its 10 s windows): content enjoyment, content usefulness, production complexity, production
-- quality. `windows` is how many 10 s windows the crop was scored over; `checkpoint_sha256` names the
-- weights that made the scores (a checkpoint replaced at the same path shows here).
CREATE TABLE crop_aesthetics (
    crop_id            VARCHAR PRIMARY KEY,
    track_id           VARCHAR NOT NULL,
    aes_ce             FLOAT NOT NULL,
    aes_cu             FLOAT NOT NULL,
    aes_pc             FLOAT NOT NULL,
    aes_pq             FLOAT NOT NULL,
    windows            INTEGER NOT NULL,
    checkpoint_sha256  VARCHAR NOT NULL,
    params_hash        VARCHAR NOT NULL
);
