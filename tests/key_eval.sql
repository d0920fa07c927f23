-- Track keys three ways, for tests/key_eval.py and bench/track_key.py (issue 28.2).

-- name: track_keys
-- Per track (by its file's stem): tracks_v's key and confidence, and the crops' agreed keys voted (the
-- most crops; a tie goes to the key of the earliest crop, since the opening usually states the key).
WITH votes AS (SELECT track_id, key_name, count(*) AS n, min(crop_index) AS first_crop
               FROM crops_v WHERE key_name IS NOT NULL GROUP BY track_id, key_name)
SELECT t.source_name, t.key_name, t.key_confidence, v.vote
FROM tracks_v AS t
LEFT JOIN (SELECT track_id, max({'n': n, 'first': -first_crop, 'key': key_name}).key AS vote
           FROM votes GROUP BY track_id) AS v USING (track_id)

-- name: crop_keys
-- Per crop: its track's file stem, both opinions, the agreed key, its confidence and agreement.
SELECT t.source_name, c.crop_index, c.key_essentia, c.key_madmom, c.key_name, c.key_confidence, c.key_agreement
FROM crops_v AS c JOIN tracks_v AS t USING (track_id)
ORDER BY t.source_name, c.crop_index
