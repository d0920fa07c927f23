"""Every file that prose names still exists.

Comments and docstrings (.py), comments (.sql, .sh, .toml, Makefile, .ci/run) and markdown name
files of this repository: `etl/engine/runner.py`, `sql/views/20_crops_v.sql`. Files move; the prose
that names them is easily forgotten. This test extracts every path-like mention
(`[a-z0-9_/-]+.(py|sql|toml|md|sh)`) and checks it:

- a mention with a `/` must exist relative to the repository root;
- a bare file name (`runner.py`, `items.sql`) must be the name of some file in the repository
  (the prose around it says which folder);

unless it is in ALLOWED below, each with the reason it names no file of ours. Migrations
(schema/*.sql) are not read: they are immutable once applied (their sha256 is recorded), so their
comments are history. Run `python tests/unit/test_doc_paths.py` to list the stale mentions.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A path-like mention: lower-case letters, digits, `_`, `-` and `/`, then a known extension; not the
# tail of a longer token (`NNN_name.sql`, `<id>.sql`, `*.sql`, `a.b.py`) nor followed by more name.
MENTION = re.compile(r"(?<![\w./<>*{}$~-])([a-z0-9_/-]*[a-z_][a-z0-9_/-]*\.(?:py|sql|toml|md|sh))(?![\w/-])")

# Mentions that name no file of this repository, on purpose, each with the reason.
ALLOWED = {
    # the user's settings file (--config's default, ./etl.toml), not a file of the repository
    "etl.toml",
    # files of other projects, named where our code follows them
    "infer.py",                      # audiobox-aesthetics' reference inference script
    "audiobox_aesthetics/infer.py",  # the same, with its package folder
    "custom_metadata.py",            # the module `etl export --format stable-audio` writes into an export
    # an argument of etl.engine.resources.sql(), a path relative to sql/ (sql/engine/state.sql)
    "engine/state.sql",
    # a file each stage folder may hold (etl/stages/<name>/views.sql), named without its folder
    "views.sql",
    # named from docs/ itself (docs/adding-a-stage.md), by its name there
    "adding-a-stage.md",
}


def tracked_files() -> list[str]:
    """The repository's files: git's list where there is one, else a walk (a release tarball)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if (ROOT / line).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts]


def python_prose(text: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a Python source."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            found.append((tok.start[0], tok.string))
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                found.append((body[0].lineno, body[0].value.value))
    return found


def hash_comments(text: str, marker: str) -> list[tuple[int, str]]:
    """(line, text) of the comments of a file whose comments start at `marker`."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        at = line.find(marker)
        if at >= 0:
            found.append((number, line[at:]))
    return found


def prose(path: str, text: str) -> list[tuple[int, str]]:
    name = Path(path).name
    if path.endswith(".py"):
        return python_prose(text)
    if path.endswith(".md"):
        return list(enumerate(text.splitlines(), 1))
    if path.endswith(".sql"):
        return hash_comments(text, "--")
    if path.endswith((".sh", ".toml")) or name == "Makefile" or path == ".ci/run":
        return hash_comments(text, "#")
    return []


def mentions() -> list[tuple[str, int, str]]:
    """(file, line, mention) of every path-like mention in the repository's prose."""
    found = []
    for path in tracked_files():
        if path.startswith("schema/") or path.startswith("shims/"):
            continue
        if not path.endswith((".py", ".md", ".sql", ".sh", ".toml")) and path not in ("Makefile", ".ci/run"):
            continue
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        for line, chunk in prose(path, text):
            for match in MENTION.finditer(chunk):
                found.append((path, line, match.group(1)))
    return found


def stale() -> list[tuple[str, int, str]]:
    files = tracked_files()
    names = {Path(f).name for f in files}
    folders = {str(parent) for f in files for parent in Path(f).parents}
    bad = []
    for path, line, mention in mentions():
        target = mention.strip("/")
        if target in ALLOWED:
            continue
        if "/" in target:
            if (ROOT / target).is_file() or target in folders:
                continue
        elif target in names:
            continue
        bad.append((path, line, mention))
    return bad


def test_every_allowed_mention_is_still_made() -> None:
    """The allow-list stays small: an entry no prose makes any more goes."""
    made = {mention.strip("/") for _, _, mention in mentions()}
    assert not ALLOWED - made, f"ALLOWED entries no longer mentioned: {sorted(ALLOWED - made)}"


def test_every_named_file_exists() -> None:
    bad = stale()
    assert not bad, "prose names files that do not exist (fix the mention, or add it to ALLOWED " \
        "with the reason):\n" + "\n".join(f"  {p}:{n}: {m}" for p, n, m in bad)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links() -> list[tuple[str, int, str]]:
    """(file, line, target) of every relative markdown link whose file does not exist."""
    bad = []
    for path in tracked_files():
        if not path.endswith(".md"):
            continue
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in LINK.finditer(line):
                target = match.group(1).split("#")[0]
                if not target or re.match(r"^[a-z]+:", target):  # an anchor, or http:, mailto:
                    continue
                if target.strip("/").split("/")[-1] in ALLOWED:
                    continue
                if not (ROOT / path).parent.joinpath(target).resolve().exists():
                    bad.append((path, number, match.group(1)))
    return bad


def test_every_relative_link_resolves() -> None:
    """Markdown links between the README, docs/ and the stages' READMEs point at files that exist."""
    bad = broken_links()
    assert not bad, "broken links:\n" + "\n".join(f"  {p}:{n}: {m}" for p, n, m in bad)


if __name__ == "__main__":
    for p, n, m in stale() + broken_links():
        print(f"{p}:{n}: {m}")
    sys.exit(0)
