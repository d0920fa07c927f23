-- captions: what each stored caption was checked against (issue 28.3). After generation and output
-- hygiene, every tempo, meter, key, loudness, length, year, name, genre and instrument a caption
-- states is checked against the crop's facts (etl/stages/captions/grounding.py); a caption with a
-- contradiction or an invention is not stored (its item fails with the reason). `grounded` lists the
-- aspects the stored caption states and the facts confirm, in a fixed order, each once: tempo, meter,
-- key, loudness, duration, year, artist, title, album, genre, instrument. An empty list: the caption
-- states nothing checkable. NULL: written before the check existed.
--   SELECT * FROM crop_captions WHERE list_contains(grounded, 'tempo')
ALTER TABLE crop_captions ADD COLUMN grounded VARCHAR[];
