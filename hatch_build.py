"""The package's extras, made at build time: one per stage, named after it, from its folder's
requirements.txt (etl/stages/<name>/requirements.txt), so a stage's dependencies live with it; the
others from [tool.hatch.metadata.hooks.custom.extras] in pyproject.toml; and `all`, every one but
`test`.
"""

from __future__ import annotations

from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface


def stage_requirements(stages_dir: Path) -> dict[str, list[str]]:
    """{stage: its requirements}: each requirements.txt's lines, less comments and blank lines."""
    extras = {}
    for path in sorted(stages_dir.glob("*/requirements.txt")):
        lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
        extras[path.parent.name] = [line for line in lines if line]
    return extras


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        extras = {**stage_requirements(Path(self.root) / "etl" / "stages"), **self.config.get("extras", {})}
        everything = [r for name, requirements in extras.items() if name != "test" for r in requirements]
        extras["all"] = list(dict.fromkeys(everything))
        metadata["optional-dependencies"] = extras
