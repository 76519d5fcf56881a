"""modelreg.daemon: the aiohttp registry daemon (never imports textual)."""

__version__ = "0.1.0"
