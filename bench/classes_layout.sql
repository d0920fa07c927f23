-- Layouts of classify's scores for bench/classes_layout.py: $crops crops of $tracks tracks, four heads
-- of 400, 56, 40 and 2 labels. Scores are synthetic (hash-based, deterministic; skewed towards 0 like
-- sigmoid outputs: about 16 % of any label's scores exceed 0.5): this measures storage, not models.
-- Sections named `build_*` make a layout's file; `q_<query>_<layout>` are the timed queries (a layout
-- without its own text for a query runs the list layout's: same tables, same columns).

-- name: build_base
-- Every layout's file holds the crops (crop_id, track_id) and the heads with their labels in order.
CREATE TABLE crops AS
SELECT substr(sha256('crop' || n), 1, 20) AS crop_id, substr(sha256('track' || n // ($crops // $tracks)), 1, 20) AS track_id,
       n AS crop_index
FROM range($crops) t(n);
CREATE TABLE class_heads AS
SELECT head, head_index, embedding_model,
       list_transform(range(n_labels), lambda i: CASE WHEN head_index = 0 AND i = 1 THEN 'Electronic---House'
                                                 WHEN head_index = 3 THEN ['instrumental', 'voice'][i + 1]
                                                 ELSE prefix || lpad(CAST(i AS VARCHAR), 3, '0') END) AS labels
FROM (VALUES ('genre_discogs400-discogs-effnet-1', 0, 400, 'Electronic---Style '),
             ('mtg_jamendo_moodtheme-discogs-effnet-1', 1, 56, 'mood '),
             ('mtg_jamendo_instrument-discogs-effnet-1', 2, 40, 'instrument '),
             ('voice_instrumental-discogs-effnet-1', 3, 2, '')) h(head, head_index, n_labels, prefix),
     (SELECT 'discogs-effnet-bs64-1' AS embedding_model);

-- name: copy_base
CREATE TABLE crops AS SELECT * FROM list_store.crops;
CREATE TABLE class_heads AS SELECT * FROM list_store.class_heads;

-- name: build_list
-- (a) today's schema (etl/stages/classify/migrations/011_classify.sql): one row per (crop, head), labels, scores and top as lists.
CREATE TABLE crop_classes (
    crop_id VARCHAR NOT NULL, track_id VARCHAR NOT NULL, head VARCHAR NOT NULL, embedding_model VARCHAR NOT NULL,
    labels VARCHAR[] NOT NULL, scores FLOAT[] NOT NULL, top STRUCT(label VARCHAR, score FLOAT)[] NOT NULL,
    params_hash VARCHAR NOT NULL, PRIMARY KEY (crop_id, head));
INSERT INTO crop_classes
SELECT crop_id, track_id, head, embedding_model, labels, scores,
       list_transform(list_slice(list_grade_up(scores, 'DESC'), 1, 5), lambda i: {'label': labels[i], 'score': scores[i]}),
       'bench'
FROM (SELECT c.crop_id, c.track_id, h.head, h.embedding_model, h.labels,
             list_transform(range(len(h.labels)), lambda i: CAST(pow((hash(c.crop_index, h.head_index, i) % 1000003) / 1000003.0, 4)
                                                             AS FLOAT)) AS scores
      FROM crops AS c, class_heads AS h);

-- name: build_long
-- (b) a long table: one row per (crop, head, label), plus the top labels one row per rank.
CREATE TABLE crop_scores (
    crop_id VARCHAR NOT NULL, track_id VARCHAR NOT NULL, head VARCHAR NOT NULL, label VARCHAR NOT NULL,
    score FLOAT NOT NULL);
INSERT INTO crop_scores
SELECT crop_id, track_id, head, unnest(labels), unnest(scores) FROM list_store.crop_classes;
CREATE TABLE crop_top (
    crop_id VARCHAR NOT NULL, track_id VARCHAR NOT NULL, head VARCHAR NOT NULL, rank TINYINT NOT NULL,
    label VARCHAR NOT NULL, score FLOAT NOT NULL, PRIMARY KEY (crop_id, head, rank));
INSERT INTO crop_top
SELECT crop_id, track_id, head, rank, top[rank].label, top[rank].score
FROM (SELECT crop_id, track_id, head, top, generate_subscripts(top, 1) AS rank FROM list_store.crop_classes);

-- name: build_scores_only
-- (c) the list layout without the labels: scores FLOAT[] in the head's label order, the labels once
-- per head in class_heads (its `labels`), top as today.
CREATE TABLE crop_classes (
    crop_id VARCHAR NOT NULL, track_id VARCHAR NOT NULL, head VARCHAR NOT NULL, embedding_model VARCHAR NOT NULL,
    scores FLOAT[] NOT NULL, top STRUCT(label VARCHAR, score FLOAT)[] NOT NULL, params_hash VARCHAR NOT NULL,
    PRIMARY KEY (crop_id, head));
INSERT INTO crop_classes
SELECT crop_id, track_id, head, embedding_model, scores, top, params_hash FROM list_store.crop_classes;

-- Queries. $label is a genre label, $head the genre head; $tracks_10k the track ids of 10,000 crops.

-- name: q_genre_top_list
SELECT crop_id FROM crop_classes WHERE head = $head AND top[1].label = $label;
-- name: q_genre_top_long
SELECT crop_id FROM crop_top WHERE head = $head AND rank = 1 AND label = $label;
-- name: q_score_over_list
SELECT crop_id FROM crop_classes WHERE head = $head AND scores[list_position(labels, $label)] > 0.5;
-- name: q_score_over_long
SELECT crop_id FROM crop_scores WHERE head = $head AND label = $label AND score > 0.5;
-- name: q_score_over_scores_only
SELECT crop_id FROM crop_classes
WHERE head = $head AND scores[(SELECT list_position(labels, $label) FROM class_heads WHERE head = $head)] > 0.5;

-- name: q_crops_v_list
-- crops_v's classify columns, for the crops of the given tracks; the placeholder is the subquery of
-- crops_v's classify columns as they stand (etl/stages/classify/views.sql) (bench/classes_layout.py reads it there).
SELECT c.crop_id, k.genre_top, k.genres, k.moods, k.instruments, k.voice
FROM crops AS c
LEFT JOIN {crops_v_classes} AS k USING (crop_id)
WHERE $all OR c.track_id IN (SELECT unnest($tracks_10k));
-- name: q_crops_v_long
SELECT c.crop_id, k.genre_top, k.genres, k.moods, k.instruments, k.voice
FROM crops AS c
LEFT JOIN (SELECT crop_id,
                  any_value(label) FILTER (WHERE head LIKE 'genre_discogs400-%' AND rank = 1) AS genre_top,
                  list(label ORDER BY rank) FILTER (WHERE head LIKE 'genre_discogs400-%') AS genres,
                  list(label ORDER BY rank) FILTER (WHERE head LIKE 'mtg_jamendo_moodtheme-%') AS moods,
                  list(label ORDER BY rank) FILTER (WHERE head LIKE 'mtg_jamendo_instrument-%') AS instruments,
                  any_value(label) FILTER (WHERE head LIKE 'voice_instrumental-%' AND rank = 1) AS voice
           FROM crop_top GROUP BY crop_id) AS k USING (crop_id)
WHERE $all OR c.track_id IN (SELECT unnest($tracks_10k));
-- name: q_track_avg_list
-- track_classes_v as it stands: the placeholder is its query, read from etl/stages/classify/views.sql.
{track_classes_v};
-- name: q_track_avg_long
-- The same result (lists in the head's label order, from class_heads) from the long table.
SELECT a.track_id, a.head, any_value(a.crops) AS crops,
       list(a.label ORDER BY list_position(h.labels, a.label)) AS labels,
       list(a.score ORDER BY list_position(h.labels, a.label)) AS scores,
       arg_max(a.label, a.score) AS top_label, max(a.score) AS top_score
FROM (SELECT track_id, head, label, avg(score) AS score, count(*) AS crops FROM crop_scores
      GROUP BY track_id, head, label) AS a
JOIN class_heads AS h USING (head)
GROUP BY a.track_id, a.head;
-- name: q_track_avg_scores_only
SELECT a.track_id, a.head, any_value(a.crops) AS crops, any_value(h.labels) AS labels,
       list(a.score ORDER BY a.i) AS scores, any_value(h.labels)[arg_max(a.i, a.score)] AS top_label,
       max(a.score) AS top_score
FROM (SELECT track_id, head, i, avg(scores[i]) AS score, count(*) AS crops
      FROM (SELECT track_id, head, scores, generate_subscripts(scores, 1) AS i FROM crop_classes)
      GROUP BY track_id, head, i) AS a
JOIN class_heads AS h USING (head)
GROUP BY a.track_id, a.head;

-- name: q_top20_list
SELECT top[1].label AS genre, count(*) AS crops FROM crop_classes WHERE head = $head
GROUP BY ALL ORDER BY crops DESC, genre LIMIT 20;
-- name: q_top20_long
SELECT label AS genre, count(*) AS crops FROM crop_top WHERE head = $head AND rank = 1
GROUP BY ALL ORDER BY crops DESC, genre LIMIT 20;
