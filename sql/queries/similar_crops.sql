-- The 20 crops that sound most like crop $crop_id: cosine similarity of their Discogs-EffNet
-- embeddings (needs `[classify] store_embedding = true`; quote an all-digit id as '"123"').
SELECT v.crop_id, v.artist, v.title, v.start_s, v.genre_top, v.bpm, v.key_name,
       round(list_cosine_similarity(e.embedding, q.embedding), 4) AS similarity, v.path
FROM crop_embeddings AS q
JOIN crop_embeddings AS e ON e.embedding_model = q.embedding_model AND e.crop_id <> q.crop_id
JOIN crops_v AS v ON v.crop_id = e.crop_id
WHERE q.crop_id = $crop_id
ORDER BY similarity DESC, v.crop_id
LIMIT 20
