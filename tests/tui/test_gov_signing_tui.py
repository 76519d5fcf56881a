"""The TUI's version pane shows a version's signature check in one line (issue 12)."""

from __future__ import annotations

from modelreg.tui.widgets.formatting import Clock, Palette
from modelreg.tui.widgets.version_detail import overview


def _version(signature):
    return {"model": "fraud", "version": 3, "stage": "none", "status": "ready", "created_at": "2026-12-03T10:00:00Z",
            "created_by": "ci", "source": "cli", "file_count": 2, "total_size": 10, "signature": signature}


def _styled(line, style) -> bool:
    return any(str(s.style) == style and s.start == 0 and s.end == len(line.plain) for s in line.spans)


def test_overview_says_who_signed_or_what_does_not_match():
    p = Palette()
    signed = overview(_version({"status": "signed", "signer": "release-key", "message": "signed by release-key",
                                "checked_at": "2026-12-03T10:00:00Z"}), None, {}, Clock(), p)
    line = next(line for line in signed.split() if "release-key" in line.plain)
    assert line.plain == "signed by release-key" and _styled(line, p.better)
    bad = overview(_version({"status": "mismatch", "signer": "release-key", "checked_at": "2026-12-03T10:00:00Z",
                             "message": "signature does not match: weights.bin changed"}), None, {}, Clock(), p)
    line = next(line for line in bad.split() if "weights.bin" in line.plain)
    assert line.plain == "signature does not match: weights.bin changed" and _styled(line, p.worse)
    assert "signature" not in overview(_version(None), None, {}, Clock(), p).plain
