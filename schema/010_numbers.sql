-- Numbers that do not pretend (README "Beat grid", "Crops", "Features").

-- How the tempo was read from the beats: 'fit' (least-squares slope of beat time on beat index over
-- the on-tempo beats: steady grids, within 0.5 % of the true tempo) or 'median' (60 / median
-- inter-beat interval: unsteady grids, or too few beats to fit).
ALTER TABLE beat_grids ADD COLUMN bpm_method VARCHAR;
ALTER TABLE crops ADD COLUMN bpm_method VARCHAR;

-- The peak of the source audio over the crop's span, before fades and encoding, in dBFS. Float
-- sources may exceed full scale; the crop file (16-bit, or MP3) holds at most full scale, so such a
-- crop was clipped by its encoder: `over_full_scale` says so (filter with NOT over_full_scale).
ALTER TABLE crops ADD COLUMN source_peak_dbfs DOUBLE;
ALTER TABLE crops ADD COLUMN over_full_scale BOOLEAN;

-- How the crop's own tempo estimate (bpm_crop) relates to the grid's tempo over the crop (bpm_grid):
-- same | double | half | triple | third (within [features] bpm_agree_tolerance) | unrelated.
ALTER TABLE crop_features ADD COLUMN bpm_relation VARCHAR;
