-- Items of the midi stage: every crop's mix and each of its stem crops, one item per (crop, source),
-- id `<crop_id>.<source>`. It reads the crop (the crops stage's output: its row and stem crops with
-- their content hashes, beats included). Whether a source is transcribed is decided by the worker from
-- the settings ([midi] mix / stems), as is a stem the stems stage flagged empty: such items are skipped
-- with the reason rather than left out, so a changed setting brings them back.
SELECT c.crop_id || '.' || s.source AS item_id, NULL AS input_fp, c.crop_id, c.track_id, s.source,
       artifact_path(s.path) AS path, s.empty, c.duration_s, c.beat_times_s, c.beat_positions,
       coalesce(c.bpm, b.bpm) AS bpm
FROM crops AS c
JOIN (SELECT crop_id, 'mix' AS source, path, false AS empty FROM crops
      UNION ALL
      SELECT cs.crop_id, cs.stem, cs.path, coalesce(ts.empty, false)
      FROM crop_stems AS cs LEFT JOIN track_stems AS ts ON ts.track_id = cs.track_id AND ts.stem = cs.stem)
     AS s USING (crop_id)
LEFT JOIN beat_grids AS b USING (track_id)
