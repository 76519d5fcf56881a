"""Hugging Face model folders: ``config.json`` and the model card's YAML front matter.

Card fields become lineage and metrics: ``base_model`` → ``derived_from``,
``datasets`` → ``trained_on``, ``model-index`` results → metrics with source
``model-card`` (and ``evaluated_on`` their datasets). ``auto_map`` in the config
or any ``*.py`` file in the folder means loading needs ``trust_remote_code``, so
the model is flagged unsafe.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path

import yaml

from .mlflow import load_yaml
from .result import MAX_ITEMS, SniffResult, bounded, cap_str, failed, plural
from .safetensors import is_inside

MAX_CONFIG = 16 * 1000 * 1000
MAX_README = 1000 * 1000
MAX_INDEX = 64 * 1000 * 1000

HF_KEYS = ("model_type", "architectures", "transformers_version", "_name_or_path", "auto_map")
CONFIG_FACTS = (
    "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "quantization_config",
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "max_position_embeddings", "tie_word_embeddings", "_name_or_path",
)
CARD_FACTS = ("license", "license_name", "language", "library_name", "pipeline_tag", "tags",
              "base_model_relation", "inference")


def read_config(path: Path, name: str) -> tuple[dict | None, str | None]:
    """The parsed config.json when it is a Hugging Face config, else ``(None, reason or None)``."""
    if os.path.getsize(path) > MAX_CONFIG:
        return None, f"{name} is over {MAX_CONFIG:,} bytes; not read"
    try:
        config = json.loads(Path(path).read_bytes())
    except (ValueError, RecursionError) as exc:
        return None, f"{name} is not valid JSON: {cap_str(str(exc), 200)}"
    if isinstance(config, dict) and any(k in config for k in HF_KEYS):
        return config, None
    return None, None


def sniff_config(path: Path, name: str) -> SniffResult | None:
    """A lone ``config.json``: a ``huggingface`` result, or ``None`` when it is some other JSON."""
    config, problem = read_config(path, name)
    if config is None:
        return None if problem is None else failed("huggingface", problem)
    return _from_config(config, name, has_python=False)


def _from_config(config: dict, name: str, has_python: bool) -> SniffResult:
    facts: dict[str, object] = {k: config[k] for k in CONFIG_FACTS if config.get(k) is not None}
    auto_map = config.get("auto_map")
    problems = []
    remote = bool(auto_map) or has_python
    if auto_map:
        facts["auto_map"] = auto_map
        problems.append(
            f"{name} has auto_map: loading this model runs its own Python code (trust_remote_code)"
        )
    facts["remote_code"] = remote
    return SniffResult(format="huggingface", facts=bounded(facts), problems=problems, unsafe=remote)


def sniff_folder(root: Path, files: list[str]) -> SniffResult | None:
    """The folder-level view of a drop: config + card + remote code + ``*.bin`` index shards.

    Returns ``None`` when the drop has no Hugging Face ``config.json`` at its root.
    """
    if "config.json" not in files:
        return None
    config, problem = read_config(root / "config.json", "config.json")
    if config is None:
        return None if problem is None else failed("huggingface", problem)
    python_files = sorted(f for f in files if f.endswith(".py"))
    result = _from_config(config, "config.json", has_python=bool(python_files))
    if python_files:
        result.facts["python_files"] = bounded(python_files)
        result.problems.append(
            f"the folder ships Python code ({', '.join(cap_str(p, 100) for p in python_files[:5])}): "
            "loading it with trust_remote_code runs that code"
        )
    readme = next((f for f in ("README.md", "readme.md", "README.MD") if f in files), None)
    if readme:
        card_facts, lineage, metrics, card_problems = read_card(root / readme, readme)
        if card_facts:
            result.facts["card"] = card_facts
        result.lineage += lineage
        result.metrics += metrics
        result.problems += card_problems
    present = set(files)
    for index in sorted(f for f in files if f.endswith(".bin.index.json")):
        missing = _missing_bin_shards(root / index, index, present)
        if missing:
            result.complete = False
            result.problems.append(missing)
    return result


def _missing_bin_shards(path: Path, name: str, present: set[str]) -> str | None:
    if os.path.getsize(path) > MAX_INDEX:
        return f"{name} is over {MAX_INDEX:,} bytes; not read"
    try:
        index = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        return f"{name} is not valid JSON: {cap_str(str(exc), 200)}"
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        return f"{name} has no weight_map"
    folder = posixpath.dirname(name)
    shards = sorted({s for s in weight_map.values() if isinstance(s, str)})
    missing = [
        s for s in shards
        if not is_inside(s) or posixpath.normpath(posixpath.join(folder, s)) not in present
    ]
    if not missing:
        return None
    shown = ", ".join(cap_str(s, 200) for s in missing[:5]) + (" …" if len(missing) > 5 else "")
    return f"{name} is missing {plural(len(missing), 'shard')} of {len(shards):,}: {shown}"


def read_card(path: Path, name: str) -> tuple[dict, list[dict], list[dict], list[str]]:
    """Facts, lineage, metrics and problems from a model card's YAML front matter."""
    with open(path, "rb") as f:
        head = f.read(MAX_README).decode("utf-8", "replace").lstrip("\ufeff")
    lines = head.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, [], [], []
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}, [], [], [f"{name} front matter has no closing '---' within its first {MAX_README:,} bytes"]
    try:
        meta = load_yaml("\n".join(lines[1:end]))
    except (yaml.YAMLError, RecursionError) as exc:
        return {}, [], [], [f"{name} front matter is not valid YAML: {cap_str(str(exc), 300)}"]
    if not isinstance(meta, dict):
        return {}, [], [], []

    facts = {k: meta[k] for k in CARD_FACTS if meta.get(k) is not None}
    lineage: list[dict] = []
    base = _names(meta.get("base_model"))
    if base:
        facts["base_model"] = base
    for model in base:
        lineage.append({"relation": "derived_from", "model": model})
    datasets = _names(meta.get("datasets"))
    if datasets:
        facts["datasets"] = datasets
    for dataset in datasets:
        lineage.append({"relation": "trained_on", "dataset": dataset})
    metrics = _model_index(meta.get("model-index"), lineage)
    return bounded(facts), lineage, metrics, []


def _names(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [cap_str(v.strip(), 512) for v in items[:MAX_ITEMS] if isinstance(v, str) and v.strip()]


def _model_index(index: object, lineage: list[dict]) -> list[dict]:
    metrics: list[dict] = []
    if not isinstance(index, list):
        return metrics
    for model in index[:100]:
        results = model.get("results") if isinstance(model, dict) else None
        for result in results[:MAX_ITEMS] if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            dataset = result.get("dataset") if isinstance(result.get("dataset"), dict) else {}
            ds = next((dataset[k] for k in ("type", "name") if isinstance(dataset.get(k), str)), None)
            if ds:
                ds = cap_str(ds, 512)
                lineage.append({"relation": "evaluated_on", "dataset": ds})
            entries = result.get("metrics")
            for metric in entries[:MAX_ITEMS] if isinstance(entries, list) else []:
                if not isinstance(metric, dict) or len(metrics) >= MAX_ITEMS:
                    continue
                key = next((metric[k] for k in ("type", "name") if isinstance(metric.get(k), str)), None)
                value = _number(metric.get("value"))
                if key and value is not None:
                    record = {"key": cap_str(key, 256), "value": value, "source": "model-card"}
                    if ds:
                        record["dataset"] = ds
                    metrics.append(record)
    return metrics


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None
