"""Key opinions on audio whose key is known: essentia's KeyExtractor (the features stage's), madmom's
CNN key recogniser (the chords stage's) and the agreed key crops_v derives from both
(etl/stages/chords/views.sql, its macros), each scored exactly and with MIREX's weighted score (mir_eval.key).

Known keys: the real recordings of ../shared/corpus whose publisher names the key (Brahms's
Hungarian Dance No. 5 in this F# minor arrangement, by its title; Sorohan's trumpet loop "in F",
which names no mode: tonic-only), and Tchaikovsky's Dance of the Sugar Plum Fairy, E minor, the key
it was written in (the arrangement keeps it), cut into 15 s windows as crops would be; and rendered
cadential progressions in all 24 keys (etl/stages/chords/testing.py).

    python -m tests.key_eval      # prints the table (used for the figures in the report)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WINDOW_S = 15.0
REAL = [("librosa_data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg", "F# minor"),
        ("librosa_data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg", "E minor"),
        ("librosa_data/sorohanro_-_solo-trumpet-06.hq.ogg", "F")]  # tonic only


@dataclass
class Opinions:
    source: str
    truth: str               # "F# minor", or a bare tonic "F"
    essentia: str | None
    essentia_strength: float | None
    madmom: str
    madmom_scores: dict[str, float]


def opinions(source: str, truth: str, stereo: np.ndarray, rate: int) -> Opinions:
    from etl.dsp import audio
    from etl.stages import chords
    from etl.stages.features import extractors

    tonal = extractors.tonal(extractors.Decoded(stereo, rate))
    mono = audio.resample(stereo.mean(axis=1), rate, chords.MADMOM_RATE)
    from madmom.audio.signal import Signal

    scores = chords.recogniser(chords.Params()).key_scores(Signal(mono, sample_rate=chords.MADMOM_RATE,
                                                                  num_channels=1))
    return Opinions(source, truth, tonal["key_name"], tonal["key_strength"], max(scores, key=scores.__getitem__),
                    scores)


def real_opinions(corpus_dir: Path) -> list[Opinions]:
    from etl.dsp import audio

    found = []
    for relative, truth in REAL:
        with audio.open_audio(str(corpus_dir / relative)) as handle:
            block, rate = audio.read_block(handle), handle.samplerate
        step = int(WINDOW_S * rate)
        for start in range(0, max(1, len(block) - step // 2), step):  # a tail under half a window is dropped
            found.append(opinions(f"{Path(relative).name}@{start // rate}s", truth, block[start:start + step], rate))
    return found


def synthetic_opinions(folder: Path) -> list[Opinions]:
    import soundfile as sf

    from etl.stages.chords import testing as synth_chords

    found = []
    instruments = list(synth_chords.INSTRUMENTS)
    for index, (tonic, mode) in enumerate((t, m) for m in ("major", "minor") for t in range(12)):
        path = folder / f"key_{tonic}_{mode}.wav"
        synth_chords.render(path, synth_chords.progression(tonic, mode), bpm=110,
                            instrument=instruments[index % len(instruments)])
        block, rate = sf.read(path, dtype="float32", always_2d=True)
        found.append(opinions(path.name, f"{synth_chords.PITCH_CLASSES[tonic]} {mode}", block, rate))
    return found


def agreed(rows: list[Opinions]) -> list[tuple[str | None, float | None, str | None]]:
    """(key_name, key_confidence, key_agreement) per row, from the view's own macro."""
    import duckdb

    from etl.engine.resources import sql

    con = duckdb.connect()
    con.execute(sql("stages/chords/views.sql", "macros"))
    out = []
    for row in rows:
        out.append(con.execute("SELECT k.key_name, k.key_confidence, k.key_agreement "
                               "FROM (SELECT agreed_key($e, $m, MAP($names, $scores)) AS k)",
                               {"e": row.essentia, "m": row.madmom, "names": list(row.madmom_scores),
                                "scores": list(row.madmom_scores.values())}).fetchone())
    con.close()
    return out


def score(truth: str, estimate: str | None) -> tuple[float, float]:
    """(exact, MIREX weighted) of one estimate; a tonic-only truth scores the tonic (both 1 or 0)."""
    import mir_eval

    if estimate is None:
        return 0.0, 0.0
    if " " not in truth:
        hit = float(estimate.split(" ")[0] == truth)
        return hit, hit
    return float(estimate == truth), float(mir_eval.key.weighted_score(truth, estimate))


def table(rows: list[Opinions]) -> dict[str, tuple[float, float]]:
    """Mean (exact, weighted) of each opinion over `rows`."""
    keys = [a[0] for a in agreed(rows)]
    result = {}
    for name, estimates in (("essentia", [r.essentia for r in rows]), ("madmom", [r.madmom for r in rows]),
                            ("agreed", keys)):
        scores = np.array([score(r.truth, e) for r, e in zip(rows, estimates)])
        result[name] = (float(scores[:, 0].mean()), float(scores[:, 1].mean()))
    return result


if __name__ == "__main__":
    import tempfile

    from tests.helpers import CORPUS

    real = real_opinions(CORPUS)
    for row in real:
        print(f"{row.source:70s} truth {row.truth:9s} essentia {row.essentia} ({row.essentia_strength:.2f}) "
              f"madmom {row.madmom} ({row.madmom_scores[row.madmom]:.2f})")
    with tempfile.TemporaryDirectory() as folder:
        synthetic = synthetic_opinions(Path(folder))
    for row in synthetic:
        print(f"{row.source:30s} truth {row.truth:9s} essentia {row.essentia} madmom {row.madmom} "
              f"({row.madmom_scores[row.madmom]:.2f}, essentia's key {row.madmom_scores.get(row.essentia or '', 0):.2f})")
    for name, rows in (("real windows", real), ("synthetic", synthetic)):
        print(name, len(rows), {k: f"exact {e:.3f} weighted {w:.3f}" for k, (e, w) in table(rows).items()})
