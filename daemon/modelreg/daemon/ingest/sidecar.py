"""The optional sidecar at a drop's root: modelreg.toml / .json / .yaml (PRODUCT.md §6)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from modelreg.shared.errors import InvalidInput

from .scan import SIDECARS

MAX_SIDECAR = 1024 * 1024
KNOWN = {"name", "description", "params", "metrics", "tags", "datasets", "run", "parent", "stage"}


def find(root: Path, is_dir: bool) -> Path | None:
    if not is_dir:
        return None
    for name in SIDECARS:
        if (root / name).is_file():
            return root / name
    return None


def read(path: Path) -> dict[str, Any]:
    """Parse a sidecar; every mistake becomes an InvalidInput a person can act on."""
    if path.stat().st_size > MAX_SIDECAR:
        raise InvalidInput(f"{path.name} is larger than {MAX_SIDECAR // 1024} KB")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text (byte {exc.start})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path.name} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    except (RecursionError, ValueError) as exc:  # nested too deeply; JSON's integers past 4300 digits
        raise InvalidInput(f"{path.name} is not valid {path.suffix.lstrip('.').upper()}: {str(exc)[:200]}") from None
    if data is None:
        return {}
    try:  # "\ud800" is a lone surrogate no UTF-8 text holds; a YAML anchor may hold itself (&a [*a])
        json.dumps(data, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"{path.name} holds a lone surrogate escape (\\ud800-\\udfff), which is not text") from None
    except ValueError:
        raise InvalidInput(f"{path.name} holds a value that contains itself (a YAML anchor used inside itself)") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} must hold a table of settings (name, params, metrics, …)")
    unknown = sorted(str(key) for key in set(data) - KNOWN)  # YAML keys may be numbers, dates…
    if unknown:
        raise InvalidInput(f"{path.name} has unknown settings {', '.join(unknown)}; "
                           f"known: {', '.join(sorted(KNOWN))}")
    if data.get("stage") not in (None, "staging", "production"):
        raise InvalidInput(f"{path.name}: stage must be staging or production, not {data['stage']!r}")
    return data
