"""Audio files of every container the tests need, written with real encoders (soundfile, PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers import write_tone


def write_m4a(path: Path, seconds: float = 1.0, sample_rate: int = 44100) -> Path:
    """AAC in MP4, encoded with PyAV (FFmpeg's libraries from the wheel)."""
    import av

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    signal = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        stream.layout = "stereo"
        for start in range(0, len(signal), 1024):
            chunk = signal[start:start + 1024]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_format(folder: Path, kind: str, name: str | None = None, seconds: float = 1.0) -> Path:
    """kind: wav | flac | ogg | opus | mp3 | m4a."""
    path = folder / (name or f"tone.{kind}")
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "m4a":
        return write_m4a(path, seconds)
    if kind == "opus":
        return write_tone(path, seconds, sample_rate=48000, channels=2, fmt="OGG", subtype="OPUS")
    if kind == "mp3":
        return write_tone(path, seconds, sample_rate=44100, channels=2, fmt="MP3", subtype="MPEG_LAYER_III")
    return write_tone(path, seconds, sample_rate=44100, channels=2, fmt=kind.upper())


def tag_file(path: Path, kind: str, tags: dict[str, str]) -> None:
    """Write tags the way common taggers do. Keys: artist title album albumartist date genre
    tracknumber compilation bpm key."""
    if kind in ("mp3", "wav"):
        from mutagen.id3 import (
            ID3,
            TALB,
            TBPM,
            TCMP,
            TCON,
            TDRC,
            TIT2,
            TKEY,
            TPE1,
            TPE2,
            TRCK,
        )

        frames = {"artist": TPE1, "title": TIT2, "album": TALB, "albumartist": TPE2, "date": TDRC,
                  "genre": TCON, "tracknumber": TRCK, "compilation": TCMP, "bpm": TBPM, "key": TKEY}
        if kind == "wav":
            from mutagen.wave import WAVE

            audio = WAVE(path)
            audio.add_tags()
            id3 = audio.tags
        else:
            id3 = ID3()
        for key, value in tags.items():
            id3.add(frames[key](encoding=3, text=[value]))
        if kind == "wav":
            audio.save()
        else:
            id3.save(path)
    elif kind == "m4a":
        from mutagen.mp4 import MP4, MP4FreeForm

        audio = MP4(path)
        keys = {"artist": "\xa9ART", "title": "\xa9nam", "album": "\xa9alb", "albumartist": "aART",
                "date": "\xa9day", "genre": "\xa9gen"}
        for key, value in tags.items():
            if key == "tracknumber":
                number, _, total = value.partition("/")
                audio["trkn"] = [(int(number), int(total or 0))]
            elif key == "compilation":
                audio["cpil"] = value == "1"
            elif key == "bpm":
                audio["tmpo"] = [int(float(value))]
            elif key == "key":
                audio["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(value.encode())]
            else:
                audio[keys[key]] = [value]
        audio.save()
    else:
        import mutagen

        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        names = {"key": "INITIALKEY", "albumartist": "ALBUMARTIST"}
        for key, value in tags.items():
            audio[names.get(key, key.upper())] = [value]
        audio.save()


def write_click_track(path: Path, bpm: float, meter: int, seconds: float, offset_s: float = 0.5,
                      sample_rate: int = 44100) -> list[tuple[float, int]]:
    """A click track with an accented, lower-pitched downbeat; returns (time_s, position) of every click."""
    t_click = np.arange(int(0.03 * sample_rate)) / sample_rate
    signal = np.zeros(int(seconds * sample_rate), dtype=np.float32)
    clicks = []
    time_s, index = offset_s, 0
    while time_s < seconds - 0.1:
        position = index % meter + 1
        downbeat = position == 1
        click = (1.0 if downbeat else 0.5) * np.sin(2 * np.pi * (1500 if downbeat else 800) * t_click)
        if downbeat:  # a kick under the downbeat, as in music
            click = click + 0.8 * np.sin(2 * np.pi * 60 * t_click) * np.exp(-t_click * 40) / np.exp(-t_click * 80)
        start = int(round(time_s * sample_rate))
        signal[start:start + len(t_click)] += (0.5 * click * np.exp(-t_click * 80)).astype(np.float32)
        clicks.append((time_s, position))
        time_s += 60.0 / bpm
        index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    import soundfile as sf

    sf.write(path, signal, sample_rate)
    return clicks
