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
