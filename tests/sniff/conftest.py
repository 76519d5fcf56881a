"""Fixtures for the sniffer tests (defined in sniff_fixtures.py)."""

from sniff_fixtures import gguf_file, keras_file, onnx_file, safetensors_file  # noqa: F401
