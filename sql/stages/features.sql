-- Items of the features stage: every crop. Its input changes with the crop (its id hashes the crop
-- parameters), the track's grid BPM, and the stems cut beside it. Which groups are already
-- computed, and with which parameters, travels in `group_hashes` and `stem_hashes` (not part of the input).
SELECT c.crop_id AS item_id,
       c.crop_id || ':' || coalesce(CAST(b.bpm AS VARCHAR), '') || ':' || coalesce(s.stem_paths, '') AS input_fp,
       c.track_id, c.path, b.bpm AS bpm_grid, s.stems,
       {'loudness': f.loudness_hash, 'spectral': f.spectral_hash, 'tonal': f.tonal_hash,
        'rhythm': f.rhythm_hash, 'series': f.series_hash} AS group_hashes,
       sf.stem_hashes
FROM crops AS c
LEFT JOIN beat_grids AS b USING (track_id)
LEFT JOIN crop_features AS f USING (crop_id)
LEFT JOIN (SELECT crop_id, list({'stem': stem, 'path': path} ORDER BY stem) AS stems,
                  string_agg(path, '|' ORDER BY stem) AS stem_paths
           FROM crop_stems GROUP BY crop_id) AS s USING (crop_id)
LEFT JOIN (SELECT crop_id, map(list(stem), list(params_hash)) AS stem_hashes
           FROM crop_stem_features GROUP BY crop_id) AS sf USING (crop_id)
