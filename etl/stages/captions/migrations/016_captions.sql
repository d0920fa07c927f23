-- captions (per crop and prompt kind): a text description of the crop written by a llama.cpp model
-- (llama-cpp-python), from the crop's stored facts (text backend) or from its audio and those facts
-- (audio backend: an audio-language model with its projector). One row per (crop, kind): the kinds
-- are `full`, `technical`, `genre_mood`, `instrumentation`, `structure` (each switchable), and the
-- row says what made it, so a changed template or model re-queues only the captions it made.
CREATE TABLE crop_captions (
    crop_id            VARCHAR NOT NULL,
    kind               VARCHAR NOT NULL,    -- the prompt kind (the template's name)
    track_id           VARCHAR NOT NULL,
    text               VARCHAR NOT NULL,    -- the caption, after output hygiene
    backend            VARCHAR NOT NULL,    -- text | audio
    model_file         VARCHAR NOT NULL,    -- the GGUF's file name
    model_sha256       VARCHAR NOT NULL,
    projector_file     VARCHAR,             -- audio backend: the projector (mmproj) file name
    projector_sha256   VARCHAR,
    template_hash      VARCHAR NOT NULL,    -- sha256[:16] of the template text (with the facts block it includes)
    prompt_tokens      INTEGER NOT NULL,    -- tokens of the filled prompt (audio: with the audio's tokens)
    completion_tokens  INTEGER NOT NULL,    -- tokens generated
    finish_reason      VARCHAR NOT NULL,    -- stop (a natural end or a stop string) | length (max tokens)
    generation_s       DOUBLE NOT NULL,     -- wall time of prompt evaluation and generation
    params_hash        VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, kind)
);
