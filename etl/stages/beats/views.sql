-- The beats stage's part of the store's views (etl/app/schema.py assembles them).

-- name: tracks_v.select
-- the beat grid's summary (NULL: none)
grid.bpm, grid.bpm_method, grid.meter, grid.bpm_confidence, grid.tempo_steady

-- name: tracks_v.join
LEFT JOIN beat_grids AS grid USING (track_id)

-- name: crops_v.select
-- the track's beat grid summary (the crop's own tempo is `bpm`)
t.bpm AS track_bpm, t.meter, t.tempo_steady, t.bpm_confidence
