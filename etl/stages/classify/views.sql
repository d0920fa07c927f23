-- The classify stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
-- classify: the top labels of the installed heads (NULL where that head is not installed)
classify.genre_top, classify.genres, classify.moods, classify.instruments, classify.voice

-- name: crops_v.join
LEFT JOIN (SELECT crop_id,
                  any_value(top[1].label) FILTER (WHERE head LIKE 'genre_discogs400-%') AS genre_top,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'genre_discogs400-%') AS genres,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'mtg_jamendo_moodtheme-%') AS moods,
                  any_value(list_transform(top, lambda x: x.label)) FILTER (WHERE head LIKE 'mtg_jamendo_instrument-%') AS instruments,
                  any_value(top[1].label) FILTER (WHERE head LIKE 'voice_instrumental-%') AS voice
           FROM crop_classes GROUP BY crop_id) AS classify USING (crop_id)

-- name: views
-- classify per track: each head's scores averaged over the track's crops (labels in the head's
-- order), the best label by that average, and how many crops it averages.
CREATE OR REPLACE VIEW track_classes_v AS
SELECT track_id, head, any_value(embedding_model) AS embedding_model, any_value(crops) AS crops,
       list(label ORDER BY i) AS labels, list(score ORDER BY i) AS scores,
       arg_max(label, score) AS top_label, max(score) AS top_score
FROM (SELECT track_id, head, i, labels[i] AS label, avg(scores[i]) AS score, count(*) AS crops,
             any_value(embedding_model) AS embedding_model
      FROM (SELECT track_id, head, embedding_model, labels, scores, generate_subscripts(scores, 1) AS i
            FROM crop_classes)
      GROUP BY track_id, head, i, labels[i])
GROUP BY track_id, head
