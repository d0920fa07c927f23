"""Key opinions on audio whose key is known: essentia's KeyExtractor (the features stage's), madmom's
CNN key recogniser (the chords stage's) and the agreed key crops_v derives from both
(etl/stages/chords/views.sql, its macros), each scored exactly and with MIREX's weighted score (mir_eval.key).

Known keys: the real recordings of ../shared/corpus whose publisher names the key (Brahms's
Hungarian Dance No. 5 in this F# minor arrangement, by its title; Sorohan's trumpet loop "in F",
which names no mode: tonic-only), and Tchaikovsky's Dance of the Sugar Plum Fairy, E minor, the key
it was written in (the arrangement keeps it), cut into 15 s windows as crops would be; and rendered
cadential progressions in all 24 keys (etl/stages/chords/testing.py).

    python -m tests.key_eval      # prints the table (used for the figures in the report)

Track keys (tracks_v.key_name, issue 28.2): pieces of music21's corpus rendered by fluidsynth with a
key stated by their score (etl/stages/chords/testing.py `score_key`), run through ingest, beats,
crops, features and chords as a store would hold them, scored beside the crops' agreed keys voted
per track and essentia's KeyExtractor over the whole file (`track_table`; bench/track_key.py runs
it on every such piece).
"""

from __future__ import annotations

import subprocess
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


# Composers of music21's corpus whose pieces are rendered for track keys: every folder but Bach's (his
# chorales are a held-back set) and those of modal or early music (Palestrina, Monteverdi, Josquin,
# ...), whose final is not a major or minor tonic, or of folk-song collections (one melody line).
COMPOSERS = ("beach", "beethoven", "chopin", "corelli", "cpebach", "handel", "haydn", "johnson_j_r", "joplin",
             "liliuokalani", "mozart", "schubert", "schumann_clara", "schumann_robert", "verdi", "weber")
# Track-key pipeline settings: 15 s sequential crops (the crop length the agreed rule was chosen at),
# because the beats stage rightly finds no steady pulse in some rendered slow movements and a
# beat-aligned crop needs one; only the tonal group of features (the key) is needed.
TRACK_SETTINGS = {"crops.mode": "sequential", "crops.seconds": "15", "features.loudness": "false",
                  "features.spectral": "false", "features.rhythm": "false", "features.series": "false"}


def corpus_pieces() -> list[str]:
    """Every candidate piece of music21's corpus (path relative to it: "mozart/k80/movement1.mxl")."""
    from music21 import corpus

    root = Path(corpus.__file__).parent
    suffixes = {".mxl", ".xml", ".musicxml", ".krn"}
    found = {}
    for path in sorted(p for c in COMPOSERS for p in (root / c).rglob("*") if p.suffix in suffixes):
        found.setdefault(path.with_suffix(""), path)  # one encoding of each piece (.krn beside .mxl)
    return [str(p.relative_to(root)) for p in found.values()]


def render_pieces(pieces: list[str], folder: Path, max_quarters: float) -> dict[str, str]:
    """Render each piece with a stated key into `folder` (WAV); {file stem: key}. A piece whose key
    the rule cannot state is left out."""
    from etl.stages.chords import testing as synth_chords

    folder.mkdir(parents=True, exist_ok=True)
    truths = {}
    for piece in pieces:
        score = synth_chords.parse_score(piece)
        truth = synth_chords.score_key(score)
        if truth is None:
            continue
        name = piece.rsplit(".", 1)[0].replace("/", "_")
        try:
            synth_chords.render_score(score, folder / f"{name}.wav", max_quarters=max_quarters)
        except subprocess.TimeoutExpired:
            # music21 wrote a MIDI file that sounds for hours (seen on beethoven/opus59no1/movement2):
            # said and left out, not waited for
            print(f"{piece}: fluidsynth still rendering after a minute; left out", flush=True)
            (folder / f"{name}.wav").unlink(missing_ok=True)
            continue
        finally:
            (folder / f"{name}.mid").unlink(missing_ok=True)
        truths[name] = truth
    return truths


def run_track_stages(db: Path, sources: list[Path]) -> None:
    """ingest, beats, crops, features and chords over `sources`, in-process, with TRACK_SETTINGS."""
    import uuid

    from etl.app import pipeline
    from etl.engine.runner import RunOptions

    config = pipeline.load_config(None, {"run.executor": "inline", **TRACK_SETTINGS})
    pipeline.run(db, config, stage_names=["ingest", "beats", "crops", "features", "chords"], sources=sources,
                 options=RunOptions(run_id=uuid.uuid4().hex[:12], executor="inline"))


def bare_essentia(path: Path) -> str:
    """essentia's KeyExtractor over the whole file (mono, 44.1 kHz), named as the store names keys."""
    import essentia.standard as es

    from etl.dsp.keys import key_names

    tonic, mode, _ = es.KeyExtractor()(es.MonoLoader(filename=str(path), sampleRate=44100)())
    return key_names(tonic, mode)[1]


@dataclass
class TrackKeys:
    name: str                 # the file's stem
    truth: str                # "F# minor", or a tonic "F"
    track: str | None         # tracks_v.key_name
    confidence: float | None  # tracks_v.key_confidence
    vote: str | None          # the crops' agreed keys (crops_v.key_name) voted, ties to the earliest crop
    essentia: str             # bare essentia over the whole file


def track_keys(db: Path, truths: dict[str, str], files: dict[str, Path]) -> list[TrackKeys]:
    """Each track's key three ways (see TrackKeys), for the tracks named in `truths`."""
    import duckdb

    from etl.engine.resources import sql

    con = duckdb.connect(str(db), read_only=True)
    try:
        found = {row[0]: row[1:] for row in con.execute(sql(str(Path(__file__).with_suffix(".sql")), "track_keys")).fetchall()}
    finally:
        con.close()
    return [TrackKeys(name, truth, *found.get(name, (None, None, None)), bare_essentia(files[name]))
            for name, truth in truths.items()]


def track_table(rows: list[TrackKeys]) -> dict[str, tuple[int, float]]:
    """(right exactly, MIREX weighted mean) of each track-level estimate over `rows`."""
    result = {}
    for name in ("track", "vote", "essentia"):
        scores = np.array([score(r.truth, getattr(r, name)) for r in rows]).reshape(-1, 2)
        result[name] = (int(scores[:, 0].sum()), float(scores[:, 1].mean()))
    return result
