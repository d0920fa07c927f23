-- The aesthetics stage's part of the store's views (etl/app/schema.py assembles them).

-- name: crops_v.select
-- AudioBox Aesthetics scores (NULL where the stage has not scored the crop)
aesthetics.aes_ce, aesthetics.aes_cu, aesthetics.aes_pc, aesthetics.aes_pq

-- name: crops_v.join
LEFT JOIN crop_aesthetics AS aesthetics USING (crop_id)
