"""`etl models`: model-backed stages, their configured model, and whether it is on this machine;
the catalog of models the project knows; `etl models fetch` to download them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from etl.engine.errors import EtlError


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False)


def show(config: Any, as_json: bool, out: Console, print_json: Any,
         catalog: Path | None = None, directory: Path | None = None) -> None:
    from etl.app.models import catalog_files, list_models
    from etl.engine import catalog as model_catalog

    rows = list_models(config)
    where = model_catalog.models_dir(directory)
    known = [model_catalog.describe(m, where) for m in model_catalog.load(catalog or catalog_files())]
    if as_json:
        print_json({"configured": rows, "catalog": known, "models_dir": str(where)})
        return
    for row in rows:
        state = "found" if row["found"] else "NOT FOUND"
        _say(out, f"{row['stage']}: {row['model']} ({row['library']}) — {state}")
        for entry in row["files"]:
            checksum = f", sha256 {entry['sha256']}" if "sha256" in entry else ""
            size = "missing" if entry["size_bytes"] is None else f"{entry['size_bytes']:,} bytes"
            _say(out, f"    {entry['path']} ({size}{checksum})")
        for label in ("problem", "licence", "install"):
            if row[label]:
                _say(out, f"    {label}: {row[label]}")
    _say(out, "")
    _say(out, f"catalog (`etl models fetch NAME`, into {where}):")
    for model in known:
        size = f"{model['size_bytes']:,} bytes" if model["size_bytes"] is not None else "size not published"
        state = "installed" if model["installed"] else "not installed"
        _say(out, f"{model['name']} [{model['stage']}] — {state}, {size}, in {model['where']}")
        _say(out, f"    licence: {model['licence']}")
        for entry in model["files"]:
            checksum = (f"sha256 {entry['sha256']}" if entry["sha256"] else
                        f"sha256 prefix {entry['sha256_prefix']}" if entry["sha256_prefix"] else entry["checksum"])
            mark = "ok" if entry["installed"] else (entry["problem"] or "missing")
            _say(out, f"    {entry['name']} ({checksum}): {mark}  {entry['urls'][0]}")
        if model["configure"]:
            _say(out, f"    use it: {model['configure']}")


def fetch(names: list[str], directory: Path | None, catalog: Path | None, yes: bool, timeout: float,
          err: Console) -> None:
    from etl.app.models import catalog_files
    from etl.engine import catalog as model_catalog
    from etl.engine.fetch import StderrProgress, fetch_file

    chosen = model_catalog.find(model_catalog.load(catalog or catalog_files()), names)
    where = model_catalog.models_dir(directory)
    for model in chosen:
        _say(err, f"{model.name}: licence: {model.licence}")
    if not yes:
        if not sys.stdin.isatty():
            raise EtlError("the licence(s) above must be accepted: run again with --yes (stdin is not a terminal)")
        answer = input("Accept these licences and download? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise EtlError("licence not accepted; nothing downloaded")
    progress = StderrProgress(sys.stderr)
    for model in chosen:
        folder = where / model.folder
        for entry in model.files:
            _say(err, f"{model.name}: {entry.name} <- {entry.urls[0]}")
            got = fetch_file(entry, folder, progress, timeout)
            if got.url is None:
                _say(err, f"    already there and verified: {got.path}")
            else:
                resumed = f", resumed at {got.resumed_from:,}" if got.resumed_from else ""
                checked = ("sha256 verified" if entry.sha256 else "sha256 prefix verified" if entry.sha256_prefix
                           else "size verified" if entry.size is not None else "checksum not published")
                _say(err, f"    {got.path} ({got.path.stat().st_size:,} bytes{resumed}; {checked})")
        if model.configure:
            _say(err, f"{model.name}: installed in {folder}; use it: {model.configure.replace('{folder}', str(folder))}")
