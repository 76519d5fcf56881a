"""Generated damage to model files, and generated sidecars (issue 11, acceptance 2).

The sniffers start from real small files (made by the real libraries, as tests/sniff does) that
hypothesis truncates, bit-flips, overwrites and splices; each result must be the sniffer's
documented outcome (a SniffResult; an incomplete one says why in ``problems``), within a hang
guard. A header that declares 1 GB, in a file that really is that long (sparse), must not make a
sniffer allocate it: measured with tracemalloc in a subprocess. Sidecars (modelreg.toml/.json/
.yaml) with generated content give a clear InvalidInput or a valid parse, never another error.
"""

from __future__ import annotations

import json
import pickle
import signal
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hostile_support import SPICY, budget, hostile_text, seed_note
from modelreg.daemon.ingest import sidecar
from modelreg.daemon.payloads import parse_metadata
from modelreg.daemon.sniff import SniffResult, sniff_drop, sniff_file
from modelreg.shared.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sniff"))  # the sniff tests' fixture makers
from sniff_fixtures import assert_json_safe, keras_bytes, make_onnx_model, write_gguf  # noqa: E402

__all__ = ["seed_note"]

GB = 1 << 30
# What one sniff may allocate while reading a file that declares 1 GB (peak, Python heap).
MEMORY_BOUND = 160 * 1024 * 1024
HANG_S = 20  # a generous guard: a sniff that takes this long is stuck, not slow


@contextmanager
def hang_guard(seconds: int, what: str) -> Iterator[None]:
    def expired(signum, frame):  # noqa: ANN001, ARG001
        raise AssertionError(f"{what} did not return within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import onnx
    from safetensors.numpy import save_file

    tmp = tmp_path_factory.mktemp("originals")
    save_file({"a": np.zeros((4, 4), np.float32), "b": np.ones(3, np.int64)}, str(tmp / "o.safetensors"),
              metadata={"format": "pt"})
    write_gguf(tmp / "o.gguf", {"w": np.zeros((4, 32), np.float32)}, chat_template="{{ x }}", vocab=40)
    onnx.save(make_onnx_model(), str(tmp / "o.onnx"))
    torch_zip = tmp / "o.pt"
    with zipfile.ZipFile(torch_zip, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": np.arange(4)}, protocol=2))
        zf.writestr("archive/version", "3\n")
    return {
        ".safetensors": (tmp / "o.safetensors").read_bytes(),
        ".gguf": (tmp / "o.gguf").read_bytes(),
        ".onnx": (tmp / "o.onnx").read_bytes(),
        ".keras": keras_bytes(),
        ".pkl": pickle.dumps({"w": np.arange(8, dtype=np.float32), "n": list(range(5))}, protocol=4),
        ".pt": torch_zip.read_bytes(),
        ".bin": pickle.dumps([1, "x", (2.0, None)], protocol=0),
    }


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> bytes:
    """One of: cut at an offset, flip bits, overwrite a run, splice random bytes in, or junk."""
    n = len(data)
    how = draw(st.sampled_from(["cut", "flip", "flip", "overwrite", "splice", "junk"]))
    if how == "cut":
        return data[: draw(st.integers(0, n))]
    out = bytearray(data)
    if how == "flip":
        for pos in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            out[pos] ^= 1 << draw(st.integers(0, 7))
    elif how == "overwrite":
        start = draw(st.integers(0, n - 1))
        fill = draw(st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff\xff\xff\xff\xff", b"\x80" * 4]))
        out[start : start + len(fill)] = fill
    elif how == "splice":
        at = draw(st.integers(0, n))
        out[at:at] = draw(st.binary(min_size=1, max_size=64))
    else:
        return data[:16] + draw(st.binary(max_size=512))
    return bytes(out)


EXTS = [".safetensors", ".gguf", ".onnx", ".keras", ".pkl", ".pt", ".bin"]


@pytest.mark.parametrize("ext", EXTS)
def test_damaged_model_files_give_an_answer(originals: dict[str, bytes], tmp_path: Path, ext: str) -> None:
    original = originals[ext]
    assert sniff_file(_write(tmp_path / f"ok{ext}", original)).complete  # the start is a good file

    @budget(60)
    @given(mutated=damage(original))
    def run(mutated: bytes) -> None:
        path = _write(tmp_path / f"model{ext}", mutated)
        with hang_guard(HANG_S, f"sniffing a damaged {ext}"):
            result = sniff_file(path)
        assert isinstance(result, SniffResult)
        assert_json_safe(result)
        if not result.complete:
            assert result.problems and all(isinstance(p, str) and p for p in result.problems)

    run()


FRONT_MATTER = st.dictionaries(st.sampled_from(["license", "base_model", "datasets", "model-index", "tags",
                                                "language", "pipeline_tag", "name"]),
                               st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), hostile_text(30)),
                                            lambda v: st.one_of(st.lists(v, max_size=3),
                                                                st.dictionaries(hostile_text(8), v, max_size=3)),
                                            max_leaves=8), max_size=5)


@budget(60)
@given(config=st.one_of(st.binary(max_size=200), st.builds(json.dumps, FRONT_MATTER).map(str.encode)),
       card=st.one_of(st.binary(max_size=200), st.builds(json.dumps, FRONT_MATTER).map(lambda s: f"---\n{s}\n---\n")),
       mlmodel=st.one_of(st.binary(max_size=200), st.sampled_from(SPICY).map(lambda s: f"flavors: {s!r}\nrun_id: {s!r}\n")))
def test_generated_folders_give_an_answer(tmp_path_factory: pytest.TempPathFactory, config: bytes, card: str | bytes,
                                          mlmodel: bytes | str) -> None:
    """A Hugging Face / MLflow folder: config.json, README front matter and MLmodel, all generated."""
    folder = tmp_path_factory.mktemp("drop")
    _write(folder / "config.json", config)
    _write(folder / "README.md", card.encode("utf-8", "surrogatepass") if isinstance(card, str) else card)
    _write(folder / "MLmodel", mlmodel.encode("utf-8", "surrogatepass") if isinstance(mlmodel, str) else mlmodel)
    with hang_guard(HANG_S, "sniffing a generated folder"):
        result = sniff_drop(folder, ["config.json", "README.md", "MLmodel"])
    assert isinstance(result, SniffResult)
    assert_json_safe(result)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- a header that declares 1 GB ----------------------------------------------------------------------


def _declares_a_gigabyte(folder: Path) -> dict[str, Path]:
    """Files whose headers announce ~1 GB, each really that long (sparse), so a size check
    against the file cannot be what saves the sniffer."""
    files: dict[str, bytes] = {
        # safetensors: the 8-byte header length.
        "header.safetensors": struct.pack("<Q", GB) + b'{"a": ',
        # GGUF v3: one metadata key whose string value claims 1 GB.
        "string.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 4) + b"name"
        + struct.pack("<IQ", 8, GB),
        # GGUF: an array of 1 G uint8 elements.
        "array.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 4) + b"toks"
        + struct.pack("<IIQ", 9, 0, GB),
        # ONNX (protobuf): field 7 (graph), length-delimited, 1 GB long.
        "graph.onnx": b"\x08\x07" + b"\x3a" + _varint(GB),
        # pickle: BINUNICODE8 and BINBYTES8 with a 1 GB length.
        "unicode.pkl": b"\x80\x04\x8d" + struct.pack("<Q", GB),
        "bytes.pkl": b"\x80\x04\x8e" + struct.pack("<Q", GB),
        # a GLOBAL opcode whose name line never ends: the scanner reads to the end (it must, to stay
        # in step), keeping 64 KiB; 128 MiB shows the bound at an eighth of the reading time.
        "line.pkl": b"\x80\x02c" + b"a" * 64,
    }
    paths = {}
    for name, head in files.items():
        path = folder / name
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(GB // 8 if name == "line.pkl" else GB + 4096)
        paths[name] = path
    paths["config.json"] = _sparse(folder / "hf" / "config.json", b'{"model_type": "')
    paths["keras-member.keras"] = _zip_claiming(folder / "keras-member.keras", "config.json")
    paths["torch-member.pt"] = _zip_claiming(folder / "torch-member.pt", "archive/data.pkl")
    return paths


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sparse(path: Path, head: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(GB)
    return path


def _zip_claiming(path: Path, member: str) -> Path:
    """A zip whose member is a real deflate stream of 1 GB of zeros (a zip bomb, ~1 MB on disk)."""
    import zlib

    chunk = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    # After a full flush the compressor starts afresh, so every further MiB of zeros compresses
    # to the same bytes: 1 GB of stream without compressing 1 GB.
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    middle = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    body = first + middle * 1022 + comp.compress(chunk) + comp.flush()
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    name = member.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), GB, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(body), GB, len(name),
                          0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    path.write_bytes(local + body + central + end)
    return path


MEASURE = """
import json, sys, tracemalloc
from pathlib import Path
from modelreg.daemon.sniff import sniff_file, sniff_drop
out = {}
tracemalloc.start()
for name, path in json.loads(sys.argv[1]).items():
    tracemalloc.reset_peak()
    p = Path(path)
    r = sniff_drop(p.parent, [p.name]) if p.name == "config.json" else sniff_file(p)
    out[name] = {"peak": tracemalloc.get_traced_memory()[1], "complete": r.complete, "problems": r.problems[:2]}
print(json.dumps(out))
"""


def test_a_header_declaring_a_gigabyte_is_not_allocated(tmp_path: Path) -> None:
    paths = _declares_a_gigabyte(tmp_path)
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps({k: str(v) for k, v in paths.items()})],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    print("peak allocation per sniff (MiB):",
          ", ".join(f"{k} {v['peak'] / 2**20:.1f}" for k, v in results.items()))
    for name, r in results.items():
        assert r["peak"] < MEMORY_BOUND, f"{name}: sniffing allocated {r['peak'] / 2**20:.0f} MiB"
        # Truly that long, some are fine files (a 1 GB string of zeros); the rest say why not.
        assert r["complete"] or r["problems"], (name, r)


# -- sidecars -----------------------------------------------------------------------------------------

SIDECAR_KEYS = sorted(sidecar.KNOWN) + ["unknown", "1", ""]
SIDECAR_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), hostile_text(20)),
    lambda v: st.one_of(st.lists(v, max_size=3), st.dictionaries(st.one_of(st.sampled_from(SIDECAR_KEYS),
                                                                           hostile_text(8)), v, max_size=3)),
    max_leaves=10)
SIDECAR_TEXT = {
    ".json": st.one_of(st.dictionaries(st.sampled_from(SIDECAR_KEYS), SIDECAR_VALUES, max_size=5).map(json.dumps),
                       st.text(max_size=200)),
    ".yaml": st.one_of(st.dictionaries(st.sampled_from(SIDECAR_KEYS), SIDECAR_VALUES, max_size=5).map(json.dumps),
                       st.text(max_size=200), st.sampled_from(["1: a\nb: c\n", "? [a]\n: b\n", "- a\n- b\n",
                                                               "a: &x [*x]\n", "name: !!python/object:os.system x\n",
                                                               "stage: [1]\n", "{1: 2, b: 3}"])),
    ".toml": st.one_of(st.text(max_size=200), st.sampled_from(['name = "a"\nstage = 1\n', "a = [" * 3000,
                                                               "[metrics]\nauc = nan\n", "1 = 2\n"])),
}


# Values YAML and TOML read as dates and times, not text or numbers.
DATES = {".yaml": "description: 2024-01-01\nparams: {a: 2024-01-01}\nmetrics: {auc: 2024-01-01}\nrun: 2024-01-01\n",
         ".toml": "description = 1979-05-27T07:32:00Z\n[params]\na = 07:32:00\n[metrics]\nauc = 1979-05-27\n",
         ".json": '{"metrics": {"auc": 1' + "0" * 5000 + '}}'}


@pytest.mark.parametrize("suffix", sorted(SIDECAR_TEXT))
def test_generated_sidecars_are_read_or_refused_clearly(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"modelreg{suffix}"

    @budget(80)
    @given(text=SIDECAR_TEXT[suffix], raw=st.one_of(st.none(), st.binary(max_size=40)))
    @example(text="1: a\nb: c\n" if suffix == ".yaml" else "{}", raw=None)  # was a TypeError (sorting keys)
    @example(text="", raw=b"name: \xff\xfe\n")  # was a UnicodeDecodeError
    @example(text=DATES[suffix], raw=None)
    @example(text='{"description": "\\ud800"}', raw=None)  # was a UnicodeEncodeError in parse_metadata
    @example(text="params: &x {a: *x}\ndescription: &y [*y]\n", raw=None)  # a value that holds itself
    @example(text="[" * 1200 if suffix != ".toml" else "a = " + "[" * 1200, raw=None)  # past the recursion limit
    def run(text: str, raw: bytes | None) -> None:
        path.write_bytes(raw if raw is not None else text.encode("utf-8", "surrogatepass"))
        with hang_guard(HANG_S, f"reading a generated {suffix} sidecar"):
            try:
                meta = sidecar.read(path)
                parse_metadata({k: v for k, v in meta.items() if k not in ("name", "stage")}, "drop:test")
            except InvalidInput as exc:
                assert exc.message

    run()
