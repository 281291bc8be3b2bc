"""ctrl+y in the what-if panel copies the form's launch line (OSC 52, through Textual's
``App.copy_to_clipboard``), the same line ``vramtop fit --command`` prints for that candidate."""

import asyncio
import subprocess
import sys

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif.panel import WhatIfPanel


async def test_ctrl_y_copies_the_launch_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    app = VramtopApp(DemoSource(), Config(interval=3600.0))
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(250):
            if app.snapshot is not None:
                break
            await asyncio.sleep(0.02)
        await pilot.press("w")
        await pilot.pause()
        panel = app.screen.query_one(WhatIfPanel)
        await pilot.press(*"medgemma-4b", "enter")
        await pilot.pause()
        model = panel.form.model.strip()
        await pilot.press("ctrl+y")
        await pilot.pause()
        copied = app.clipboard
    cli = subprocess.run([sys.executable, "-m", "vramtop", "fit", model, "--demo", "--command"],
                         capture_output=True, text=True, timeout=60)
    assert copied and copied == cli.stdout.rstrip("\n")
    assert " vllm serve google/medgemma-4b-it --tensor-parallel-size 1 " in copied
