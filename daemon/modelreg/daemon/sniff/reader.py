"""Bounded, buffered reads over an untrusted file.

A :class:`Cursor` never reads past the size it was given and never allocates
more than it was asked for after checking that request against the bytes that
are really there, so a hostile length field costs an exception, not memory.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

CHUNK = 1 << 20


class Truncated(Exception):
    """The file ends before the data its own structure announces."""

    def __init__(self, needed: int, size: int, what: str = "") -> None:
        self.needed = needed
        self.size = size
        self.what = what
        super().__init__(f"needs {needed:,} bytes{' for ' + what if what else ''}, file has {size:,}")


class Malformed(Exception):
    """The bytes do not follow the format (wrong magic, impossible value, limit exceeded)."""


class Cursor:
    """A forward reader with a 1 MiB window; absolute positions, explicit end."""

    def __init__(self, f: BinaryIO, size: int, pos: int = 0) -> None:
        self.f = f
        self.size = size
        self.pos = pos
        self._buf = b""
        self._buf_start = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def read(self, n: int, what: str = "") -> bytes:
        if n < 0:
            raise Malformed(f"negative length {n}")
        end = self.pos + n
        if end > self.size:
            raise Truncated(end, self.size, what)
        off = self.pos - self._buf_start
        if off < 0 or off + n > len(self._buf):
            self.f.seek(self.pos)
            if n > CHUNK:
                data = self.f.read(n)
                if len(data) != n:
                    raise Truncated(end, self.pos + len(data), what)
                self.pos = end
                return data
            self._buf = self.f.read(CHUNK)
            self._buf_start = self.pos
            off = 0
            if len(self._buf) < n:
                raise Truncated(end, self.pos + len(self._buf), what)
        self.pos = end
        return self._buf[off : off + n]

    def skip(self, n: int, what: str = "") -> None:
        if n < 0:
            raise Malformed(f"negative length {n}")
        if self.pos + n > self.size:
            raise Truncated(self.pos + n, self.size, what)
        self.pos += n

    def seek(self, pos: int) -> None:
        if pos < 0 or pos > self.size:
            raise Truncated(pos, self.size)
        self.pos = pos

    def unpack(self, fmt: str, what: str = "") -> tuple:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))

    def u8(self) -> int:
        return self.read(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.read(8))[0]

    def varint(self, end: int | None = None) -> int:
        """A protobuf base-128 varint (at most 10 bytes)."""
        limit = self.size if end is None else end
        result = 0
        for shift in range(0, 70, 7):
            if self.pos >= limit:
                raise Truncated(self.pos + 1, limit, "a varint")
            byte = self.read(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
        raise Malformed("varint longer than 10 bytes")

    def readline(self, limit: int) -> bytes | None:
        """Bytes up to and including ``\\n``; ``None`` (line consumed) when longer than ``limit``."""
        start = self.pos
        kept = bytearray()
        while True:
            off = self.pos - self._buf_start
            if off < 0 or off >= len(self._buf):
                if self.pos >= self.size:
                    raise Truncated(self.pos + 1, self.size, "a line ending")
                self.f.seek(self.pos)
                self._buf = self.f.read(min(CHUNK, self.size - self.pos))
                self._buf_start = self.pos
                off = 0
                if not self._buf:
                    raise Truncated(self.pos + 1, self.pos, "a line ending")
            nl = self._buf.find(b"\n", off)
            stop = len(self._buf) if nl < 0 else nl + 1
            if len(kept) <= limit:
                kept += self._buf[off:stop]
            self.pos = self._buf_start + stop
            if nl >= 0:
                return bytes(kept) if self.pos - start <= limit else None


def zip_damage(zf: zipfile.ZipFile, size: int) -> str | None:
    """Why the zip's central directory and its members do not fit the file, or ``None``."""
    for info in zf.infolist():
        # 30 bytes of local header plus the name; extras may add more, so this is a lower bound.
        end = info.header_offset + 30 + len(info.filename.encode("utf-8", "replace")) + info.compress_size
        if end > size:
            return f"member {info.filename} needs {end:,} bytes, file has {size:,}"
    return None


def read_member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """A zip member's bytes, refusing members larger than ``cap`` (declared or actual)."""
    info = zf.getinfo(name)
    if info.file_size > cap:
        raise Malformed(f"{name} is {info.file_size:,} bytes, over the {cap:,}-byte limit")
    with zf.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        raise Malformed(f"{name} expands beyond {cap:,} bytes")
    return data
