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

from platformdirs import user_config_dir

# id → (default keys, what it does); the help screen lists them in this order.
DEFAULT_KEYS: dict[str, tuple[str, str]] = {
    "stage": ("s", "move the version to staging"),
    "promote": ("p", "promote the version to production"),
    "archive": ("a", "archive the version"),
    "rollback": ("r", "roll production back to the previous version"),
    "gates": ("g", "dry-run the gates (staging and production)"),
    "mark": ("space", "mark / unmark the version for comparison"),
    "compare": ("c", "compare the marked versions"),
    "lineage": ("l", "lineage tree, upstream and downstream"),
    "history": ("h", "stage history of the model"),
    "events": ("e", "the live event log"),
    "filter": ("slash", "filter (models by name; versions by stage, metric, tag)"),
    "help": ("question_mark,f1", "this help"),
    "back": ("q,escape", "back (quit on the models screen)"),
}

KEYMAP_FILE = "keymap.toml"


@dataclass
class LoadedKeymap:
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    problems: list[str] = field(default_factory=list)


def keymap_paths(home: Path | None) -> list[Path]:
    paths = [home / KEYMAP_FILE] if home else []
    return paths + [Path(user_config_dir("modelreg", appauthor=False)) / KEYMAP_FILE]


def load_keymap(paths: list[Path]) -> LoadedKeymap:
    """The first keymap file that exists; bad entries are reported, never fatal."""
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
        for binding_id, keys in table.items():
            if binding_id not in DEFAULT_KEYS:
                loaded.problems.append(f"{path}: unknown binding id {binding_id!r} "
                                       f"(known: {', '.join(DEFAULT_KEYS)})")
            elif not isinstance(keys, str) or not keys.strip():
                loaded.problems.append(f"{path}: {binding_id} must be a key string such as \"ctrl+p\"")
            else:
                loaded.keymap[binding_id] = ",".join(k.strip() for k in keys.split(",") if k.strip())
        return loaded
    return LoadedKeymap()


def keys_for(binding_id: str, keymap: dict[str, str]) -> str:
    return keymap.get(binding_id, DEFAULT_KEYS[binding_id][0])
