"""The table of models the stages know: publisher URLs, sizes, checksums where published, licence,
and the folder each goes to under the models directory. Each stage keeps its part in its folder's
models.toml (etl/stages/stems/models.toml...); the application layer lists every stage's
(etl/app/models.py: catalog_files) for `etl models`.

`$ETL_MODEL_CATALOG` (or `--catalog`) points at another table of the same shape (tests use one that
names a server on 127.0.0.1). `$ETL_MODELS_DIR` (or `--dir`) is where models are fetched to; by
default `~/.cache/music-etl/models`.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.engine.errors import EtlError
from etl.engine.resources import stage_dir


@dataclass(frozen=True)
class CatalogFile:
    name: str
    urls: tuple[str, ...]
    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class CatalogModel:
    name: str
    stage: str
    licence: str
    folder: str
    files: tuple[CatalogFile, ...]
    library: str = ""
    homepage: str = ""
    configure: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def catalog_paths(path: str | Path | Sequence[Path]) -> list[Path]:
    """The catalog files to read: one file named (`--catalog`), or the stages' files, for which
    `$ETL_MODEL_CATALOG` may name one file instead (tests name a table of local URLs)."""
    if isinstance(path, str | Path):
        return [Path(path).expanduser()]
    override = os.environ.get("ETL_MODEL_CATALOG")
    return [Path(override).expanduser()] if override else [Path(p).expanduser() for p in path]


def models_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("ETL_MODELS_DIR") or "~/.cache/music-etl/models").expanduser()


def load(path: str | Path | Sequence[Path]) -> list[CatalogModel]:
    """Every model of these catalog files (see catalog_paths), in order."""
    return [model for source in catalog_paths(path) for model in _load_file(source)]


def _load_file(source: Path) -> list[CatalogModel]:
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EtlError(f"model catalog {source} not found") from None
    except (OSError, UnicodeError) as error:  # a folder, no permission, not text
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise EtlError(f"cannot read model catalog {source}: {reason}") from None
    except tomllib.TOMLDecodeError as error:
        raise EtlError(f"model catalog {source}: {error}") from None
    models = []
    for entry in data.get("model", []):
        try:
            files = tuple(CatalogFile(name=f["name"], urls=tuple(f["urls"]), size=f.get("size"),
                                      sha256=(f.get("sha256") or None), sha256_prefix=f.get("sha256_prefix"))
                          for f in entry.get("file", []))
            models.append(CatalogModel(name=entry["name"], stage=entry["stage"], licence=entry["licence"],
                                       folder=entry["folder"], files=files, library=entry.get("library", ""),
                                       homepage=entry.get("homepage", ""), configure=entry.get("configure", ""),
                                       notes=entry.get("notes", "")))
        except KeyError as missing:
            raise EtlError(f"model catalog {source}: a model lacks {missing}") from None
    return models


def providing(stage: str, model: str, folder: Path | None = None) -> CatalogModel | None:
    """The catalog's model that gives `stage` its configured `model`: by name, or by a file named
    after it (discogs-effnet holds discogs-effnet-bs64-1.pb), from the stage's own models.toml (in
    `folder`, by default etl/stages/<stage>). None when the catalog has none (or cannot be read: a
    hint is never worth an error)."""
    try:
        models = load([(folder or stage_dir(stage)) / "models.toml"])
    except EtlError:
        return None
    return next((m for m in models if m.stage == stage
                 and (m.name == model or any(Path(f.name).stem == model for f in m.files))), None)


def not_installed(stage: str, model: str, folder: Path | None = None) -> str:
    """The one line a stage whose model is missing says in `etl run` and `etl status` (under 80
    columns there): the command that fetches it where the catalog has it, naming the model only where
    the command does not; else where to look. The whole text is `etl models`' and `status --json`'s."""
    known = providing(stage, model, folder)
    if known is None:
        return f"model {model} not installed — `etl models` says how"
    what = "model" if known.name == model else model
    return f"{what} not installed: etl models fetch {known.name}"


def find(models: list[CatalogModel], names: list[str]) -> list[CatalogModel]:
    by_name = {m.name: m for m in models}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise EtlError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify(path: Path, entry: CatalogFile) -> str | None:
    """Why `path` is not the published file (None when it matches everything published about it)."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return f"size {size:,} bytes, published {entry.size:,}"
    if entry.sha256 or entry.sha256_prefix:
        digest = sha256_of(path)
        if entry.sha256 and digest != entry.sha256.lower():
            return f"sha256 {digest}, published {entry.sha256.lower()}"
        if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
            return f"sha256 {digest}, published prefix {entry.sha256_prefix.lower()}"
    return None


def describe(model: CatalogModel, directory: Path, checksums: bool = False) -> dict[str, Any]:
    """One `etl models` row: what is published and whether it is in `directory`."""
    folder = directory / model.folder
    files = []
    for entry in model.files:
        path = folder / entry.name
        present = path.is_file()
        problem = None
        if present and (entry.size is not None and path.stat().st_size != entry.size):
            problem = f"size {path.stat().st_size:,} bytes, published {entry.size:,}"
        elif present and checksums:
            problem = verify(path, entry)
        files.append({"name": entry.name, "urls": list(entry.urls), "size_bytes": entry.size,
                      "sha256": entry.sha256, "sha256_prefix": entry.sha256_prefix,
                      "checksum": ("published" if entry.sha256 else
                                   "prefix published" if entry.sha256_prefix else "checksum not published"),
                      "path": str(path), "installed": present and problem is None, "problem": problem})
    sizes = [f.size for f in model.files]
    return {"name": model.name, "stage": model.stage, "library": model.library, "licence": model.licence,
            "homepage": model.homepage, "where": str(folder),
            "configure": model.configure.replace("{folder}", str(folder)), "notes": model.notes,
            "size_bytes": sum(sizes) if all(s is not None for s in sizes) else None,  # type: ignore[misc]
            "installed": all(f["installed"] for f in files), "files": files}
