"""Where demucs weights are on this machine, found without importing torch or demucs.

`etl status` and `etl run` ask every stage whether it can run here; for the stems stage that is
"are the model's files on disk", answered by looking where demucs's own loaders look:

- a configured model repository (demucs's `--repo` layout): `<name>.yaml` naming the bag's model
  signatures, each a `<sig>.th` or `<sig>-<sha256 prefix>.th`; or a single `<name>.th`;
- otherwise demucs's default caches: the HuggingFace hub cache (`adefossez/HTDemucs` and the like,
  what demucs 4.1 downloads) and torch hub's checkpoint folder (the legacy download location);
  then the folder `etl models fetch htdemucs` fills (`<models dir>/demucs`, a repository), so that
  the command the skip line names is all it takes.

Nothing here downloads: a model that is not found makes the stage report "skipped" with how to get it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

HF_NAMESPACE = "adefossez"  # demucs.hf.DEFAULT_NAMESPACE
LICENCE = ("demucs code and pretrained weights: MIT (facebookresearch/demucs); the htdemucs models were "
           "trained on MUSDB18-HQ plus 800 extra songs")


@dataclass
class ModelFiles:
    name: str
    found: bool
    where: str                        # the repository folder or cache searched
    files: list[Path] = field(default_factory=list)
    problem: str | None = None        # why it is not usable, when not found
    repo: str | None = None           # the repository to load it from (None: demucs's caches)

    def describe(self, checksums: bool = False) -> list[dict[str, object]]:
        rows = []
        for path in self.files:
            row: dict[str, object] = {"path": str(path), "size_bytes": path.stat().st_size}
            if checksums:
                with open(path, "rb") as handle:
                    row["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
            rows.append(row)
        return rows


def fetched_folder() -> Path:
    """Where `etl models fetch` puts demucs's files (the catalog's `folder`)."""
    from etl.engine.catalog import models_dir

    return models_dir() / "demucs"


def install_hint(name: str, repo: str) -> str:
    from etl.engine.catalog import providing

    if repo:
        return (f"put {name}.yaml (`models: [<sig>, ...]`) and each <sig>.th (or <sig>-<checksum>.th) in {repo}, "
                f"or a single {name}.th; pretrained ones come from https://dl.fbaipublicfiles.com/demucs/ "
                "(see demucs/remote/files.txt)")
    known = providing("stems", name)
    if known is not None:
        return (f"`etl models fetch {known.name}` (into {fetched_folder()}, where this stage looks), or copy a "
                "HuggingFace cache holding it (~/.cache/huggingface/hub) from a machine that ran demucs")
    return (f"copy a HuggingFace cache holding it (~/.cache/huggingface/hub) from a machine that ran demucs with "
            f"-n {name}, or set [stems] repo to a folder holding {name}.yaml and its .th files")


def _hf_repo_name(name: str) -> str:
    """demucs.hf.hf_repo_name: htdemucs -> HTDemucs, htdemucs_ft -> HTDemucs-ft, mdx -> Demucs-mdx."""
    if name == "htdemucs":
        return "HTDemucs"
    if name.startswith("htdemucs_"):
        return "HTDemucs-" + name[len("htdemucs_"):]
    return "Demucs-" + name


def _bag_signatures(yaml_path: Path) -> list[str]:
    """The `models:` list of a bag file (flow or block style), read without PyYAML."""
    text = yaml_path.read_text(encoding="utf-8")
    flow = re.search(r"^models:\s*\[([^\]]*)\]", text, re.MULTILINE)
    if flow:
        return [s.strip().strip("'\"") for s in flow.group(1).split(",") if s.strip()]
    block = re.search(r"^models:\s*\n((?:\s*-\s*.+\n?)+)", text, re.MULTILINE)
    if block:
        return [line.split("-", 1)[1].strip().strip("'\"") for line in block.group(1).splitlines() if line.strip()]
    return []


def _local_model(folder: Path, sig: str) -> Path | None:
    """demucs.repo.LocalRepo: `<sig>.th` or `<sig>-<checksum>.th`."""
    plain = folder / f"{sig}.th"
    if plain.is_file():
        return plain
    matches = sorted(p for p in folder.glob(f"{sig}-*.th") if p.stem.rsplit("-", 1)[0] == sig)
    return matches[0] if matches else None


def find_in_repo(name: str, repo: str) -> ModelFiles:
    folder = Path(repo).expanduser()
    if not folder.is_dir():
        return ModelFiles(name, False, str(folder), problem=f"model repository {folder} is not a folder")
    bag = folder / f"{name}.yaml"
    if bag.is_file():
        signatures = _bag_signatures(bag)
        files, missing = [bag], []
        for sig in signatures:
            path = _local_model(folder, sig)
            (files.append(path) if path else missing.append(sig))
        if not signatures or missing:
            return ModelFiles(name, False, str(folder), files,
                              problem=f"{bag.name} names models missing from {folder}: {', '.join(missing) or '(none listed)'}")
        return ModelFiles(name, True, str(folder), files)
    single = _local_model(folder, name)
    if single is not None:
        return ModelFiles(name, True, str(folder), [single])
    return ModelFiles(name, False, str(folder), problem=f"neither {name}.yaml nor {name}.th in {folder}")


def _hf_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _torch_checkpoints() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def _demucs_remote() -> Path | None:
    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "remote"


def find_in_cache(name: str) -> ModelFiles:
    namespace, _, short = name.rpartition("/")
    # 1. The HuggingFace hub cache (demucs 4.1's download location).
    hub = _hf_cache() / f"models--{namespace or HF_NAMESPACE}--{_hf_repo_name(short)}" / "snapshots"
    for snapshot in sorted(hub.glob("*"), reverse=True) if hub.is_dir() else []:
        bag = snapshot / f"{short}.yaml"
        if bag.is_file():
            files = [bag] + [snapshot / f"{sig}.safetensors" for sig in _bag_signatures(bag)]
            if len(files) > 1 and all(f.is_file() for f in files):
                return ModelFiles(name, True, str(snapshot), files)
    # 2. torch hub's checkpoints (the legacy AWS files, named in demucs/remote/files.txt).
    remote, checkpoints = _demucs_remote(), _torch_checkpoints()
    if remote is not None and (remote / f"{short}.yaml").is_file() and not namespace:
        urls = [line.strip() for line in (remote / "files.txt").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "root:"))]
        by_sig = {u.split("-", 1)[0]: u for u in urls}
        signatures = _bag_signatures(remote / f"{short}.yaml")
        files = [checkpoints / by_sig[s] for s in signatures if s in by_sig]
        if signatures and len(files) == len(signatures) and all(f.is_file() for f in files):
            return ModelFiles(name, True, str(checkpoints), files)
    return ModelFiles(name, False, f"{hub.parent} or {checkpoints}",
                      problem=f"model {name} not found in the HuggingFace cache ({_hf_cache()}), torch hub's "
                              f"checkpoints ({checkpoints})")


def find_model(name: str, repo: str) -> ModelFiles:
    if repo:
        return replace(find_in_repo(name, repo), repo=repo)
    cached = find_in_cache(name)
    if cached.found:
        return cached
    fetched = find_in_repo(name, str(fetched_folder())) if fetched_folder().is_dir() else None
    if fetched is not None and fetched.found:
        return replace(fetched, repo=fetched.where)
    return replace(cached, where=f"{cached.where.replace(' or ', ', ')} or {fetched_folder()}",
                   problem=f"{cached.problem} or {fetched_folder()}; this stage never downloads")
