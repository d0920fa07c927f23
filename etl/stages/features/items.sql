-- Items of the features stage: every crop. It reads the crop (its row and stem crops, content
-- hashes included: crops.bpm is the grid's tempo over the crop's own beats, which the rhythm group
-- carries down as bpm_grid) and the track's beat grid (its tempo where the crop has none). Which
-- groups are already computed for this audio, and with which parameters, travels in
-- `group_hashes` and `stem_hashes`, so a re-run computes only what is missing.
SELECT c.crop_id AS item_id, NULL AS input_fp, c.track_id,
       artifact_path(c.path) AS path, c.sha256, coalesce(c.bpm, b.bpm) AS bpm_grid, s.stems,
       {'loudness': f.loudness_hash, 'spectral': f.spectral_hash, 'tonal': f.tonal_hash,
        'rhythm': f.rhythm_hash, 'series': f.series_hash} AS group_hashes,
       sf.stem_hashes
FROM crops AS c
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN crop_features AS f USING (crop_id)
LEFT JOIN (SELECT crop_id, list({'stem': stem, 'path': artifact_path(path), 'sha256': sha256} ORDER BY stem) AS stems
           FROM crop_stems GROUP BY crop_id) AS s USING (crop_id)
LEFT JOIN (SELECT crop_id, list({'stem': stem, 'hash': params_hash} ORDER BY stem) AS stem_hashes
           FROM crop_stem_features GROUP BY crop_id) AS sf USING (crop_id)
