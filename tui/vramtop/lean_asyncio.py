"""asyncio for the live view, without OpenSSL loaded at start.

asyncio imports ``ssl`` for the TLS transports of its own event loop, and ``ssl`` loads OpenSSL:
about 4 MiB resident, a tenth of the live view, kept for days in a tmux pane. The live view never
opens a TLS transport through asyncio: its requests run on worker threads, through
``vramtop.peer_http`` (a dashboard, an engine: it imports ``ssl`` once a peer accepts a
connection) or huggingface_hub (the Hub), each importing ``ssl`` when it first needs it.

Importing this module imports asyncio with ``ssl`` held off (asyncio takes the ImportError as
"no TLS", as on a Python built without it), then lets ``ssl`` be imported as usual. In this process
asyncio's own TLS (``loop.create_connection(ssl=...)``) is therefore off. Where asyncio or ``ssl``
is already imported (a test process, an app embedding vramtop) it changes nothing.
"""

from __future__ import annotations

import sys

if "asyncio" not in sys.modules and "ssl" not in sys.modules:
    sys.modules["ssl"] = None  # type: ignore[assignment]  # ``import ssl`` raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
