"""Binding ids and the user's keymap file.

Every key the TUI documents (PRODUCT.md §7) is a ``Binding`` with one of these ids. A keymap
file remaps them, one ``binding_id = "key"`` per line (several keys: ``"p,ctrl+p"``)::

    # HOME/keymap.toml, or ~/.config/modelreg/keymap.toml
    promote = "P"
    rollback = "ctrl+r"

It is applied with ``App.set_keymap``; Textual then rebinds every Binding with that id.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir
from textual.binding import BindingsMap

# What a key does is said once, on its Binding (its tooltip, else its description); the help
# screen and the keymap's known ids are read from the bindings the app really has, in the
# order of these sources, so there is no second table of keys to fall out of step.


@dataclass
class KeyHelp:
    """One row of the help: a binding id (None for keys a keymap cannot remap), its keys, what it does."""

    binding_id: str | None
    keys: list[str]
    what: str


def _sources(app: Any = None) -> list[tuple[Any, BindingsMap]]:
    from .app import ModelregApp
    from .screens.events import EventsScreen
    from .screens.model import ModelScreen
    from .screens.models import ModelsScreen, ModelsTable
    from .widgets.record_table import RecordTable

    def own(cls: type) -> BindingsMap:
        return BindingsMap(cls.__dict__.get("BINDINGS", []))

    app_map = app._bindings.copy() if app is not None else own(ModelregApp)
    return [(ModelScreen, own(ModelScreen)), (ModelregApp, app_map), (ModelsScreen, own(ModelsScreen)),
            (ModelsTable, own(ModelsTable)), (RecordTable, own(RecordTable)), (EventsScreen, own(EventsScreen))]


def key_help(app: Any = None) -> list[KeyHelp]:
    """Every key the TUI documents, as bound now: ``app``'s keymap applied (defaults without an app).

    A binding is documented when it has an id (a keymap can remap it) or a tooltip; of the app's
    own bindings only those with an id and the command palette's (Textual's quit keys are not ours).
    Rows with the same id, or id-less rows with the same keys, are one row.
    """
    keymap = getattr(app, "_keymap", None) or {}
    rows: dict[object, KeyHelp] = {}
    by_key: dict[str, KeyHelp] = {}
    for source, bindings in _sources(app):
        # Rows in the order the code declares them; keys as bound now (a keymap moves them).
        live = bindings.copy()
        if keymap:
            live.apply_keymap(keymap)
        live_keys: dict[str, list[str]] = {}
        for key, binding in live:
            if binding.id:
                live_keys.setdefault(binding.id, []).append(key)
        for key, binding in bindings:
            if not binding.id and not binding.tooltip:
                continue
            if source.__name__ == "ModelregApp" and not binding.id and binding.action != "command_palette":
                continue
            what = binding.tooltip or binding.description
            if binding.id:
                row = rows.setdefault(binding.id, KeyHelp(binding.id, [], what))
                row.keys += [k for k in live_keys.get(binding.id, []) if k not in row.keys]
                continue
            row = by_key.get(key)
            if row is None:
                row = by_key[key] = rows.setdefault((source, binding.action), KeyHelp(None, [key], what))
            elif what not in row.what:
                row.what += f"; {what}"
    return list(rows.values())


def binding_ids() -> list[str]:
    """The ids a keymap file may remap, in help order."""
    return [row.binding_id for row in key_help() if row.binding_id]


def __getattr__(name: str) -> Any:
    # DEFAULT_KEYS (id → (default keys, what it does)) is derived from the bindings, on demand.
    if name == "DEFAULT_KEYS":
        return {row.binding_id: (",".join(row.keys), row.what) for row in key_help() if row.binding_id}
    raise AttributeError(name)


KEYMAP_FILE = "keymap.toml"


@dataclass
class LoadedKeymap:
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    problems: list[str] = field(default_factory=list)


def keymap_paths(home: Path | None) -> list[Path]:
    paths = [home / KEYMAP_FILE] if home else []
    return paths + [Path(user_config_dir("modelreg", appauthor=False)) / KEYMAP_FILE]


def load_keymap(paths: list[Path], known: list[str] | None = None) -> LoadedKeymap:
    """The first keymap file that exists; bad entries are reported, never fatal.

    ``known`` is the binding ids to accept (default: every id the TUI's bindings carry).
    """
    for path in paths:
        if not path.is_file():
            continue
        loaded = LoadedKeymap(path=path)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            loaded.problems.append(f"{path}: {exc}")
            return loaded
        table = data.get("keymap", data) if isinstance(data.get("keymap"), dict) else data
        ids = binding_ids() if known is None else known
        for binding_id, keys in table.items():
            if binding_id not in ids:
                loaded.problems.append(f"{path}: unknown binding id {binding_id!r} "
                                       f"(known: {', '.join(ids)})")
            elif not isinstance(keys, str) or not keys.strip():
                loaded.problems.append(f"{path}: {binding_id} must be a key string such as \"ctrl+p\"")
            else:
                loaded.keymap[binding_id] = ",".join(k.strip() for k in keys.split(",") if k.strip())
        return loaded
    return LoadedKeymap()

