"""The real music the stage benchmarks run on, as a folder of links in a temporary directory."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def default_folders() -> list[Path]:
    """data/demo-music (fetched by `make demo`) where present, else ../shared/corpus."""
    demo = REPO / "data" / "demo-music"
    return [demo] if demo.is_dir() else [REPO.parent / "shared" / "corpus"]


def audio_files(folders: list[Path]) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in AUDIO)


def link_library(paths: list[Path], dest: Path) -> Path:
    """One flat folder of symlinks (numbered, so names never collide) to the given files."""
    dest.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        (dest / f"{index:03d}{path.suffix}").symlink_to(path.resolve())
    return dest
