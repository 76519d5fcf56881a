"""Keras 3 ``.keras`` archives: a zip with ``metadata.json``, ``config.json`` and ``model.weights.h5``.

A config can make ``keras.saving.load_model`` import arbitrary modules
(CVE-2025-1550) and Lambda layers carry Python bytecode, so both flag the model
unsafe. Nothing is deserialised beyond ``json.loads``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from .reader import Malformed, read_member, zip_damage
from .result import MAX_ITEMS, SniffResult, bounded, cap_str, failed

MAX_JSON = 32 * 1000 * 1000
MAX_WALK = 200_000


def sniff(path: Path, name: str) -> SniffResult:
    """keras_version, class name, layer count and classes, unsafe constructs, zip listing."""
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as zf:
            damage = zip_damage(zf, size)
            if damage:
                return failed("keras", f"{name} is truncated: {damage}")
            names = zf.namelist()
            listing = {i.filename: i.file_size for i in zf.infolist()[:MAX_ITEMS]}
            if "config.json" not in names:
                return failed("keras", f"{name} is not a Keras archive: it has no config.json",
                              {"files": bounded(listing)})
            config = json.loads(read_member(zf, "config.json", MAX_JSON))
            metadata = (
                json.loads(read_member(zf, "metadata.json", MAX_JSON)) if "metadata.json" in names else {}
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        return failed("keras", f"{name} is not a readable zip (truncated or damaged): {exc}")
    except (ValueError, RecursionError, Malformed) as exc:
        return failed("keras", f"{name} has an unreadable config: {cap_str(str(exc), 300)}")
    if not isinstance(config, dict):
        return failed("keras", f"{name} has a config.json that is not a JSON object")
    metadata = metadata if isinstance(metadata, dict) else {}

    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = inner.get("layers") if isinstance(inner.get("layers"), list) else []
    layer_classes: dict[str, int] = {}
    for layer in layers[:100_000]:
        cls = layer.get("class_name") if isinstance(layer, dict) else None
        if isinstance(cls, str):
            layer_classes[cls] = layer_classes.get(cls, 0) + 1

    modules, lambdas, bytecode = _scan(config)
    foreign = sorted(m for m in modules if not _is_keras_module(m))
    problems = []
    if lambdas or bytecode:
        problems.append(
            f"{name} has {lambdas} Lambda layer(s) and {bytecode} serialised function(s): "
            "loading them runs Python bytecode stored in the file"
        )
    if foreign:
        problems.append(
            f"{name} makes Keras import modules outside keras: "
            + ", ".join(cap_str(m, 100) for m in foreign[:10])
        )
    facts = {
        "keras_version": metadata.get("keras_version"),
        "date_saved": metadata.get("date_saved"),
        "class_name": config.get("class_name"),
        "model_name": inner.get("name"),
        "layer_count": len(layers),
        "layer_classes": layer_classes,
        "lambda_layers": lambdas,
        "bytecode_functions": bytecode,
        "foreign_modules": foreign,
        "has_weights": "model.weights.h5" in names,
        "files": listing,
    }
    compile_config = config.get("compile_config")
    if isinstance(compile_config, dict):
        optimizer = compile_config.get("optimizer")
        facts["optimizer"] = optimizer.get("class_name") if isinstance(optimizer, dict) else optimizer
        facts["loss"] = compile_config.get("loss")
    facts = {k: v for k, v in facts.items() if v is not None}
    unsafe = bool(lambdas or bytecode or foreign)
    return SniffResult(format="keras", facts=bounded(facts), problems=problems, unsafe=unsafe)


def _scan(config: dict) -> tuple[set[str], int, int]:
    """Every ``module`` string, the Lambda layer count and the serialised-bytecode count,
    walked iteratively with a node budget."""
    modules: set[str] = set()
    lambdas = bytecode = 0
    stack: list[object] = [config]
    walked = 0
    while stack and walked < MAX_WALK:
        node = stack.pop()
        walked += 1
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and len(modules) < MAX_ITEMS:
                modules.add(module)
            if node.get("class_name") == "Lambda":
                lambdas += 1
            elif node.get("class_name") == "__lambda__":
                bytecode += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return modules, lambdas, bytecode


def _is_keras_module(module: str) -> bool:
    return module == "keras" or module.startswith(("keras.", "tf_keras."))
