-- A group's track, rendering and provided stems are replaced as a whole. A track two groups give
-- (the same stems in two folders) stays while one of them holds it.

-- name: clear_stems
DELETE FROM track_stems
WHERE source = 'provided'
  AND track_id IN (SELECT track_id FROM multitrack_groups WHERE group_id IN (SELECT item_id FROM cleared))
  AND NOT EXISTS (SELECT 1 FROM multitrack_groups AS other
                  WHERE other.track_id = track_stems.track_id AND other.group_id NOT IN (SELECT item_id FROM cleared));

-- name: clear_tracks
-- Only rendered tracks are this stage's (a mix file's track is ingest's).
DELETE FROM tracks
WHERE track_id IN (SELECT track_id FROM multitrack_groups
                   WHERE group_id IN (SELECT item_id FROM cleared) AND mix_path IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM multitrack_groups AS other
                  WHERE other.track_id = tracks.track_id AND other.group_id NOT IN (SELECT item_id FROM cleared));

-- name: clear_groups
DELETE FROM multitrack_groups WHERE group_id IN (SELECT item_id FROM cleared);

-- name: insert_groups
INSERT INTO multitrack_groups BY NAME SELECT *, $params_hash AS params_hash FROM new_groups;

-- name: upsert_tracks
INSERT OR REPLACE INTO tracks BY NAME
SELECT *, $params_hash AS params_hash FROM new_tracks QUALIFY row_number() OVER (PARTITION BY track_id) = 1;

-- name: insert_stems
-- Two groups giving the same track give the same stems: the first written stays. `model` names the layout.
INSERT INTO track_stems BY NAME
SELECT s.*, (SELECT min(g.layout) FROM new_groups AS g WHERE g.track_id = s.track_id) AS model,
       $params_hash AS params_hash
FROM new_stems AS s
QUALIFY row_number() OVER (PARTITION BY s.track_id, s.stem ORDER BY s.path) = 1
ON CONFLICT (track_id, stem, source) DO NOTHING;
