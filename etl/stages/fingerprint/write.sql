-- The fingerprint stage's write: a track's fingerprint, its rows of the inverted index, and the
-- near-duplicate pairs its batch finds against every track stored before it (and against the
-- batch's own earlier tracks). A recomputed or retired track loses its pairs with its fingerprint,
-- and its new write finds them again: what a run leaves is what a fresh run makes.

-- name: clear_pairs
DELETE FROM duplicate_pairs
WHERE track_id IN (SELECT item_id FROM cleared) OR other_track_id IN (SELECT item_id FROM cleared);

-- name: clear_index
DELETE FROM fingerprint_index WHERE track_id IN (SELECT item_id FROM cleared);

-- name: clear_fingerprints
DELETE FROM track_fingerprints WHERE track_id IN (SELECT item_id FROM cleared);

-- name: insert_fingerprints
INSERT INTO track_fingerprints BY NAME SELECT *, $params_hash AS params_hash FROM new_fingerprints;

-- name: insert_index
-- Only informative sub-fingerprints: one equal to the one before it (silence, a held chord) says
-- nothing about which recording this is, and silence would otherwise make every pair of quiet
-- intros a candidate.
INSERT INTO fingerprint_index
SELECT track_id, pos::INTEGER AS pos, (fingerprint[pos + 1] >> (32 - $key_bits))::UINTEGER AS key
FROM (SELECT track_id, fingerprint,
             unnest(list_filter(range(len(fingerprint)), lambda i: i = 0 OR fingerprint[i + 1] <> fingerprint[i])) AS pos
      FROM new_fingerprints);

-- name: insert_pairs
-- Candidates come only through the index join (never all pairs): each shared key votes for the
-- shift between the two tracks' positions; a pair with at least $min_votes votes at its best shift
-- is verified on the whole fingerprints at that shift and its neighbours (a time offset that is not
-- a whole hop splits the match between two shifts), counting aligned sub-fingerprints that differ
-- in at most $max_bit_errors of 32 bits. Keys held by more than $max_key_tracks tracks (stationary
-- sounds, test tones) are left out: they would vote for everything.
INSERT INTO duplicate_pairs BY NAME
WITH batch AS (
    SELECT track_id, pos, key FROM fingerprint_index WHERE track_id IN (SELECT track_id FROM new_fingerprints)
), common_keys AS (
    SELECT key FROM fingerprint_index
    WHERE key IN (SELECT key FROM batch)
    GROUP BY key HAVING count(DISTINCT track_id) > $max_key_tracks
), votes AS (
    -- new: a track of this batch; old: one stored before it, or earlier in this batch (each pair once)
    SELECT b.track_id AS new_id, o.track_id AS old_id, o.pos - b.pos AS shift, count(*) AS n_votes
    FROM batch AS b
    JOIN fingerprint_index AS o ON o.key = b.key AND o.track_id <> b.track_id
    WHERE b.key NOT IN (SELECT key FROM common_keys)
      AND (o.track_id < b.track_id OR o.track_id NOT IN (SELECT track_id FROM new_fingerprints))
    GROUP BY ALL
    HAVING count(*) >= $min_votes
), candidates AS (
    SELECT new_id, old_id, arg_max(shift, n_votes) AS shift FROM votes GROUP BY ALL
), aligned AS (
    -- new's item j lies at old's item j + shift
    SELECT c.new_id, c.old_id, c.shift + d.step AS shift, o.fingerprint AS fo, n.fingerprint AS fn,
           range(greatest(0, -(c.shift + d.step)), least(len(n.fingerprint), len(o.fingerprint) - (c.shift + d.step))) AS js,
           least(len(n.fingerprint), len(o.fingerprint)) AS n_shorter
    FROM candidates AS c
    JOIN track_fingerprints AS n ON n.track_id = c.new_id
    JOIN track_fingerprints AS o ON o.track_id = c.old_id
    CROSS JOIN (VALUES (-1), (0), (1)) AS d(step)
), scored AS (
    SELECT new_id, old_id, shift, n_shorter,
           list_transform(js, lambda j: bit_count(xor(fo[j + shift + 1], fn[j + 1]))) AS errors
    FROM aligned
), best AS (
    SELECT new_id, old_id,
           arg_max({'shift': shift, 'matched': len(list_filter(errors, lambda e: e <= $max_bit_errors)),
                    'errors': coalesce(list_sum(errors), 0), 'aligned': len(errors), 'n_shorter': n_shorter},
                   len(list_filter(errors, lambda e: e <= $max_bit_errors))) AS m
    FROM scored GROUP BY ALL
)
SELECT least(new_id, old_id) AS track_id, greatest(new_id, old_id) AS other_track_id,
       -- other_track_id's start, in seconds into track_id
       CASE WHEN old_id < new_id THEN m.shift ELSE -m.shift END * $item_s AS offset_s,
       m.matched / m.n_shorter AS matched_share,
       m.errors / greatest(m.aligned, 1) / 32 AS bit_error_rate,
       $params_hash AS params_hash
FROM best
WHERE m.n_shorter > 0 AND m.matched / m.n_shorter >= $min_share;
