"""`modelreg show`: one version as readable text (header, lineage, metrics, params, tags,
files and what the sniffers read from each file)."""

from __future__ import annotations

from typing import Any

from .render import Cell, Output, Span, count, metric, plural, size, stage, status, table, value_text, when

MAX_FILES = 200
MAX_TENSORS_SHOWN = 5


def print_version(o: Output, v: dict[str, Any]) -> None:
    head: list[Cell] = [Span(f"{v['model']}@{v['version']}", "bold"), "  ", stage(v["stage"]), "  ", status(v["status"])]
    if v.get("status_message"):
        head.append(f" ({v['status_message']})")
    o.line(*head)
    facts = v.get("facts") or {}
    rows: list[tuple[str, Cell]] = [
        ("created", f"{when(v['created_at'])} by {v['created_by']} via {v['source']}"),
    ]
    if v.get("stage_changed_at"):
        rows.append(("stage since", when(v["stage_changed_at"])))
    if v.get("description"):
        rows.append(("about", v["description"]))
    if facts.get("format"):
        about = [facts["format"]]
        if isinstance(facts.get("parameter_count"), int):
            about.append(f"{count(facts['parameter_count'])} parameters")
        rows.append(("format", " · ".join(about)))
    rows.append(("content", f"{v['content_digest'] or '-'}  ({plural(v['file_count'], 'file')}, {size(v['total_size'])})"))
    if v.get("aliases"):
        rows.append(("aliases", ", ".join(v["aliases"]) if isinstance(v["aliases"], list) else value_text(v["aliases"])))
    if facts.get("unsafe"):
        rows.append(("unsafe", Span("loading these files can run code (see problems)", "bold red")))
    if v.get("signature"):  # issue 12: the check of the bundle given with the version
        sig = v["signature"]
        rows.append(("signature", Span(sig["message"], "green" if sig["status"] == "signed" else "bold red")))
    o.fields(rows)

    problems = facts.get("problems") or []
    if problems:
        _section(o, "problems")
        for p in problems:
            o.line("  ", Span("! ", "bold red"), str(p))

    lin = v.get("lineage") or {}
    lineage_rows: list[tuple[str, Cell]] = []
    for ds in lin.get("datasets", []):
        lineage_rows.append((ds["relation"].replace("_", " "), Span(ds["dataset"], "cyan")))
    if lin.get("run"):
        run = lin["run"]
        experiment = [Span(f"  experiment {run['experiment']}", "dim")] if run.get("experiment") else []
        lineage_rows.append(("run", [Span(str(run["id"]), "magenta"), *experiment]))
    for p in lin.get("parents", []):
        if p.get("external"):
            lineage_rows.append(("parent", [p["ref"], Span(" (outside this registry)", "dim")]))
        else:
            lineage_rows.append(("parent", [Span(p["ref"], "bold"), "  ", stage(p.get("stage"))]))
    if lineage_rows:
        _section(o, "lineage")
        o.fields(lineage_rows)

    if v.get("metrics"):
        _section(o, "metrics")
        t = table("metric", "value", "source", "records", indent=2)
        records = v.get("metric_records") or []
        for key, val in v["metrics"].items():
            mine = [r for r in records if r["key"] == key]
            latest = mine[-1] if mine else {}
            source = latest.get("source", "")
            if latest.get("dataset"):
                source += f" on {latest['dataset']}"
            t.add_row(key, metric(val), source, str(len(mine)) if len(mine) > 1 else "")
        o.table(t)

    for title, values in (("params", v.get("params")), ("tags", v.get("tags"))):
        if values:
            _section(o, title)
            o.fields([(str(k), value_text(val, 500)) for k, val in values.items()])

    files = v.get("files") or []
    if files:
        _section(o, "files")
        t = table("path", "size", "sha256", indent=2)
        for f in files[:MAX_FILES]:
            t.add_row(f["path"], size(f["size"]), f["sha256"])
        o.table(t)
        if len(files) > MAX_FILES:
            o.line(f"  … and {len(files) - MAX_FILES} more (--json for all)")

    per_file = facts.get("files") or {}
    for path, file_facts in per_file.items():
        rows = file_fact_rows(file_facts)
        _section(o, path, f"  {file_facts.get('format') or '?'}")
        o.fields(rows)
    for key, title in (("huggingface", "Hugging Face folder"), ("mlflow", "MLflow model"),
                       ("safetensors-sharded", "sharded safetensors")):
        shown = key == "mlflow" and any(f.get("format") == "mlflow" for f in per_file.values())
        if isinstance(facts.get(key), dict) and not shown:  # the MLmodel file's own section says it all
            _section(o, title)
            o.fields(_generic_rows(facts[key]) if key != "mlflow" else _mlflow_rows(facts[key]))
    if facts.get("files_not_sniffed"):
        o.line(f"  {plural(facts['files_not_sniffed'], 'more file')} not read (too many files)")


def _section(o: Output, title: str, note: str = "") -> None:
    o.blank()
    o.line(Span(title, "bold"), Span(note, "dim"))


def file_fact_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    """What a person wants to know about one file, by format; anything else generically."""
    fmt = f.get("format")
    rows: list[tuple[str, Cell]] = []
    if not f.get("complete", True):
        rows.append(("complete", Span("no: the file is truncated or damaged", "bold red")))
    rows += {"safetensors": _safetensors_rows, "onnx": _onnx_rows, "gguf": _gguf_rows, "pickle": _pickle_rows,
             "keras": _keras_rows}.get(fmt or "", _generic_rows)(f)
    return rows


_COMMON = {"format", "complete", "unsafe"}


def _dtypes(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _shape(shape: list[int]) -> str:
    return "[" + "×".join(str(d) for d in shape) + "]" if shape else "scalar"


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _tensor_summary(tensors: list[dict[str, Any]], dtype_key: str, truncated: bool) -> str:
    biggest = sorted(tensors, key=lambda t: -_numel(t.get("shape") or []))[:MAX_TENSORS_SHOWN]
    text = ", ".join(f"{t['name']} {t.get(dtype_key, '')} {_shape(t.get('shape') or [])}" for t in biggest)
    rest = len(tensors) - len(biggest)
    if rest > 0 or truncated:
        text += f", … {rest} more" if rest > 0 else ", …"
    return text


def _safetensors_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = [
        ("tensors", f"{count(f.get('tensor_count'))} ({count(f.get('parameter_count'))} parameters)"),
    ]
    if f.get("dtypes"):
        rows.append(("dtypes", _dtypes(f["dtypes"])))
    if f.get("tensors"):
        rows.append(("largest", _tensor_summary(f["tensors"], "dtype", bool(f.get("tensors_truncated")))))
    if f.get("metadata"):
        rows.append(("metadata", value_text(f["metadata"])))
    return rows


def _onnx_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = []
    opsets = f.get("opset_import") or []
    if f.get("opset") is not None or opsets:
        extra = [f"{o['domain']} {o['version']}" for o in opsets if o.get("domain")]
        rows.append(("opset", str(f.get("opset", "-")) + (f" (+ {', '.join(extra)})" if extra else "")))
    if f.get("producer_name"):
        rows.append(("producer", f"{f['producer_name']} {f.get('producer_version') or ''}".strip()))
    g = f.get("graph") or {}
    if g.get("inputs") is not None:
        rows.append(("inputs", value_text(g["inputs"]) or "-"))
    if g.get("outputs") is not None:
        rows.append(("outputs", value_text(g["outputs"]) or "-"))
    if g:
        ops = ", ".join(f"{op} ×{n}" if n > 1 else op for op, n in (g.get("op_types") or {}).items())
        rows.append(("graph", f"{g.get('name') or '-'}: {plural(g.get('node_count', 0), 'node')}" + (f" ({ops})" if ops else "")))
        if g.get("parameter_count") is not None:
            dtypes = value_text(g.get("initializer_dtypes") or {})
            rows.append(("parameters", f"{count(g['parameter_count'])} in {plural(g.get('initializer_count', 0), 'initializer')}"
                         + (f" ({dtypes})" if dtypes else "")))
        if g.get("external_data"):
            rows.append(("external data", value_text(g["external_data"])))
    if f.get("ir_version") is not None:
        rows.append(("IR version", str(f["ir_version"])))
    if f.get("metadata_props"):
        rows.append(("metadata", value_text(f["metadata_props"])))
    return rows


def _gguf_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = []
    if f.get("architecture"):
        rows.append(("architecture", str(f["architecture"]) + (f" ({f['name']})" if f.get("name") else "")))
    if f.get("file_type_name") or f.get("file_type") is not None:
        rows.append(("quantisation", str(f.get("file_type_name") or f"file type {f['file_type']}")))
    shape = [f"{label} {f[key]:,}" for key, label in (("context_length", "context"), ("embedding_length", "embedding"),
                                                     ("block_count", "blocks"), ("head_count", "heads"))
             if isinstance(f.get(key), int)]
    if shape:
        rows.append(("shape", ", ".join(shape)))
    rows.append(("tensors", f"{count(f.get('tensor_count'))} ({count(f.get('parameter_count'))} parameters)"))
    if f.get("tensor_types"):
        rows.append(("types", _dtypes(f["tensor_types"])))
    if "has_chat_template" in f:
        rows.append(("chat template", "yes" if f["has_chat_template"] else "no"))
    if f.get("split"):
        rows.append(("split", value_text(f["split"])))
    for key in ("completeness_unverified", "trailing_bytes"):
        if f.get(key):
            rows.append((key.replace("_", " "), value_text(f[key])))
    return rows


def _pickle_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = []
    unsafe = f.get("unsafe_globals") or []
    if unsafe:
        rows.append(("unsafe imports", Span(", ".join(unsafe), "bold red")))
    else:
        rows.append(("unsafe imports", Span("none", "green")))
    others = [g for g in f.get("globals") or [] if g not in unsafe]
    if others:
        rows.append(("imports", value_text(others, 300)))
    if f.get("protocol") is not None:
        rows.append(("protocol", str(f["protocol"])))
    if f.get("scan_complete") is False:
        rows.append(("scan", Span("incomplete: cannot be vouched for", "yellow")))
    if f.get("sklearn_version"):
        rows.append(("scikit-learn", str(f["sklearn_version"])))
    return rows


def _keras_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = []
    if f.get("class_name"):
        rows.append(("model", f"{f['class_name']}" + (f" {f['model_name']}" if f.get("model_name") else "")))
    if f.get("keras_version"):
        rows.append(("keras", str(f["keras_version"])))
    if f.get("layer_count") is not None:
        classes = f.get("layer_classes")
        rows.append(("layers", str(f["layer_count"]) + (f" ({value_text(classes)})" if classes else "")))
    for key in ("optimizer", "loss"):
        if f.get(key):
            rows.append((key, value_text(f[key])))
    if f.get("lambda_layers") or f.get("bytecode_functions"):
        rows.append(("code", Span(f"{f.get('lambda_layers', 0)} Lambda layer(s), "
                                  f"{f.get('bytecode_functions', 0)} serialised function(s)", "bold red")))
    if f.get("foreign_modules"):
        rows.append(("imports", Span(value_text(f["foreign_modules"]), "bold red")))
    return rows


def _mlflow_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    rows: list[tuple[str, Cell]] = []
    if f.get("flavors"):
        rows.append(("flavors", value_text(f["flavors"])))
    for key in ("run_id", "model_uuid", "mlflow_version", "utc_time_created"):
        if f.get(key):
            rows.append((key.replace("_", " "), str(f[key])))
    sig = f.get("signature") or {}
    for part in ("inputs", "outputs"):
        cols = sig.get(part)
        if isinstance(cols, list):
            rows.append((part, ", ".join(
                f"{c.get('name', '?')}: {c.get('type', '?')}" if isinstance(c, dict) else value_text(c) for c in cols[:20])))
    return rows


def _generic_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    return [(str(k).replace("_", " "), value_text(v)) for k, v in f.items()
            if k not in _COMMON and v not in (None, "", [], {})]
