"""What an export selects: the rows (a WHERE over crops_v), their split, and how paths are written.

Splits are assigned by a hash of a grouping key (md5 of the track id, album or artist), so every
crop of one group lands in the same split, and the same command gives the same split every time.
Near-duplicate recordings (the fingerprint stage's `duplicate_pairs`: an MP3 and a FLAC rip, a loop
cut from a longer file) join their keys: the split's unit is the connected component of (same key)
∪ (duplicate pair), so two copies of a recording never land in different splits, even when their
artist tags differ. A key in such a component is drawn under the component's smallest key; keys of
tracks without duplicates are drawn as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.app.schema import long_lists
from etl.engine.errors import ExportError
from etl.engine.resources import sql

SPLIT_NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "valid", "test")}
_BUCKETS = 10_000  # split resolution: 0.01 %

# The grouping key's SQL over crops_v; tracks without the tag fall back to their own id.
GROUP_KEYS = {
    "track": "c.track_id",
    "album": "coalesce(lower(coalesce(c.album_artist, c.artist)) || ' / ' || lower(c.album), c.track_id)",
    "artist": "coalesce(lower(coalesce(c.album_artist, c.artist)), c.track_id)",
    # The name of the folder holding the track's file: a song and its stems, or an untagged album,
    # stay together (the name alone, so moving the library does not reshuffle the splits).
    "folder": "coalesce(lower(parse_filename(parse_dirpath(c.track_path))), c.track_id)",
}


@dataclass(frozen=True)
class Split:
    name: str
    percent: float


def parse_split(spec: str | None) -> list[Split]:
    """'90/5/5' -> train 90, valid 5, test 5; '80/20' -> train, test. None: no split."""
    if not spec:
        return []
    try:
        parts = [float(p) for p in spec.split("/")]
    except ValueError:
        raise ExportError(f"--split expects percentages like 90/5/5, got {spec!r}") from None
    if len(parts) not in SPLIT_NAMES or any(p < 0 for p in parts) or abs(sum(parts) - 100) > 1e-6:
        raise ExportError(f"--split expects 1 to 3 percentages adding up to 100 (e.g. 90/5/5), got {spec!r}")
    return [Split(name, percent) for name, percent in zip(SPLIT_NAMES[len(parts)], parts)]


def split_sql(splits: list[Split], group_by: str, duplicate_units: bool = False) -> str:
    """A CASE over a stable hash bucket of the group key (constants only: nothing user-typed); with
    `duplicate_units`, of the key's unit in `export_split_units` (registered by `register_units`)."""
    if group_by not in GROUP_KEYS:
        raise ExportError(f"--group-by must be one of {', '.join(GROUP_KEYS)}")
    if not splits:
        return "NULL::VARCHAR"
    key = GROUP_KEYS[group_by]
    if duplicate_units:
        key = f"coalesce((SELECT u.unit FROM export_split_units AS u WHERE u.key = {key}), {key})"
    bucket = f"(('0x' || left(md5({key}), 8))::UBIGINT % {_BUCKETS})"
    cases, upper = [], 0.0
    for split in splits[:-1]:
        upper += split.percent
        cases.append(f"WHEN {bucket} < {round(upper / 100 * _BUCKETS)} THEN '{split.name}'")
    return f"CASE {' '.join(cases)} ELSE '{splits[-1].name}' END" if cases else f"'{splits[-1].name}'"


def duplicate_units(con: Any, group_by: str) -> dict[str, str]:
    """{key: its unit} for every key joined to another by a near-duplicate pair (union-find over the
    keys: linear in the pairs), the unit being the smallest key of its component. Empty where no
    track has a duplicate (or the store has no fingerprint stage's table)."""
    if not con.execute(sql("export/rows.sql", "has_duplicate_pairs_table")).fetchall()[0][0] \
            or not con.execute(sql("export/rows.sql", "has_duplicate_pairs")).fetchall()[0][0]:
        return {}
    text = sql("export/rows.sql", "duplicate_key_pairs").replace("{key}", GROUP_KEYS[group_by])
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]  # path halving
            key = parent[key]
        return key

    for a, b in con.execute(text).fetchall():
        ra, rb = root(a), root(b)
        if ra != rb:  # the smaller key becomes the root: the unit is its component's smallest key
            parent[max(ra, rb)] = min(ra, rb)
    return {key: root(key) for key in list(parent)}


def register_units(con: Any, units: dict[str, str]) -> None:
    import pyarrow as pa

    con.register("export_split_units", pa.table({"key": pa.array(list(units), pa.string()),
                                                 "unit": pa.array(list(units.values()), pa.string())}))


@dataclass
class ExportPlan:
    """Everything a format writer needs to select its rows and write their paths."""

    out: Path                  # the final folder (absolute)
    where: str                 # through the read-only gate already
    params: dict[str, Any]
    splits: list[Split]
    group_by: str = "track"
    placement: str | None = None   # "link" | "copy" | None (manifests point at the store's files)
    absolute_paths: bool = False   # the format's default already applied (see export_formats.PATHS)
    # Relative paths start at the manifest's folder (hf: OUT/<split>/) rather than at OUT, from which
    # the other formats' loaders are run (one working directory serves every split).
    relative_to_manifest: bool = False
    include_source_paths: bool = False  # track_path / source_path in what leaves the machine
    view: str = "crops_v"      # crops_all_v to include the crops of tracks whose files are gone
    extra: dict[str, Any] = field(default_factory=dict)  # per-format options (shard size)
    # Splits drawn per unit of keys joined by near-duplicate pairs (`export_split_units` registered)
    duplicate_units: bool = False
    dedupe: bool = False           # one copy per duplicate group (the fingerprint stage's duplicate_copies_v)

    @property
    def split_names(self) -> list[str | None]:
        return [s.name for s in self.splits] or [None]

    def audio_dir(self, split: str | None) -> Path:
        return self.out / split / "audio" if split else self.out / "audio"

    def manifest_path_sql(self, per_split_manifest: bool) -> tuple[str, dict[str, Any]]:
        """SQL for a crop's audio path as a manifest in out/ (or out/<split>/) writes it."""
        per_split_manifest = per_split_manifest and self.relative_to_manifest
        if self.placement:
            inside = "'audio/' || c.crop_id || '.' || c.format"
            split_folder = f"coalesce({split_sql(self.splits, self.group_by, self.duplicate_units)} || '/', '')"
            if self.absolute_paths:  # the placed file: OUT/<split>/audio/<crop>.<format>
                return (f"$export_out_prefix || {split_folder} || {inside}",
                        {"export_out_prefix": f"{self.out}/"})
            return (inside if per_split_manifest else f"{split_folder} || {inside}"), {}
        # Unplaced, the manifest names the store's own crop files, absolutely: a relative path from
        # OUT into the store would break when either moved (export._plan refuses it).
        return "c.path", {}

    def rows_sql(self, path_sql: str = "c.path", dedupe: bool | None = None) -> str:
        """sql/export/rows.sql's `rows` with its splices filled (--dedupe's condition unless told)."""
        dedupe = self.dedupe if dedupe is None else dedupe
        return sql("export/rows.sql", "rows").format(
            manifest_path=path_sql, split=split_sql(self.splits, self.group_by, self.duplicate_units),
            where=self.where, view=self.view, prompt=sql("export/rows.sql", "prompt"),
            dedupe=sql("export/rows.sql", "dedupe") if dedupe else "true")

    def statement(self, name: str, per_split_manifest: bool = False) -> tuple[str, dict[str, Any]]:
        """A statement of sql/export/rows.sql with its splices filled, and every bind it needs."""
        path_sql, binds = self.manifest_path_sql(per_split_manifest)
        rows = self.rows_sql(path_sql)
        # Where the crop's source paths stay out of a written table (unless asked for).
        private = "" if self.include_source_paths else ", source_path, track_path"
        text = rows if name == "rows" else (sql("export/rows.sql", name).replace("{rows}", rows)
                                             .replace("{private}", private)
                                             .replace("{long_lists}", "".join(f", {c}" for c in long_lists())))
        return text, {**self.params, **binds}
