"""The named presets, one YAML file each beside this module (tiny.yaml, fast.yaml, ...), and how a name
or a path finds its file. Kept apart from the settings' reader so a command can refuse an unknown preset
without importing what the settings describe (the networks, and torch with them)."""

from __future__ import annotations

from pathlib import Path

PRESET_DIRECTORY = Path(__file__).resolve().parent
"""The named presets, one YAML file each (shipped with the package): tiny.yaml, fast.yaml, ..."""

_PRESET_ORDER = ("tiny", "fast", "full", "study-fast", "study-full")  # smallest first, in messages


def preset_names() -> tuple[str, ...]:
    """The shipped presets, smallest first (then any other file in the folder, by name)."""
    names = sorted(file.stem for file in PRESET_DIRECTORY.glob("*.yaml"))
    order = {name: i for i, name in enumerate(_PRESET_ORDER)}
    return tuple(sorted(names, key=lambda name: order.get(name, len(order))))


def preset_file(source: str | Path) -> Path:
    """The YAML file of a preset name ("tiny") or path ("my-study.yaml"); unknown names are refused,
    naming the presets."""
    if str(source) in preset_names():
        return PRESET_DIRECTORY / f"{source}.yaml"
    path = Path(source).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    raise KeyError(
        f"unknown preset {str(source)!r}; presets: {', '.join(preset_names())} (or a path to a YAML file)"
    )


def preset_label(source: str | Path) -> str:
    """How a preset is named in run and report names: its name, or its file's stem."""
    return str(source) if str(source) in preset_names() else Path(source).stem
