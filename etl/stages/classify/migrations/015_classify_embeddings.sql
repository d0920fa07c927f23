-- classify, optional ([classify] store_embedding): each crop's Discogs-EffNet embedding (the mean
-- over its patches), for similarity search: `etl query --name similar_crops -p crop_id='"…"'` ranks
-- crops by `list_cosine_similarity`. A list column, not FLOAT[1280]: the size is the embedding
-- model's, read from its metadata, not fixed by the schema.
CREATE TABLE crop_embeddings (
    crop_id          VARCHAR PRIMARY KEY,
    track_id         VARCHAR NOT NULL,
    embedding_model  VARCHAR NOT NULL,
    embedding        FLOAT[] NOT NULL
);
