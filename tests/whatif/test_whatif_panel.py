"""The what-if panel driven by keys only, on the demo node, at terminal sizes from 40 to 200 columns."""

from __future__ import annotations

import pytest
import yaml
from textual.widgets import Input, OptionList, Static

from host_app import demo_app, first_picture, next_tick, screen_text
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory
from vramtop.widgets.whatif.panel import NARROW_COLUMNS, WhatIfPanel, WhatIfScreen

SIZES = [(40, 50), (80, 40), (149, 40), (150, 40), (200, 60)]  # the panel moves into the side column at 150


def panel_of(app) -> WhatIfPanel:
    return app.screen.query_one(WhatIfPanel)


def headline(app) -> str:
    return str(app.screen.query_one("#wi-headline", Static).render())


async def open_panel(pilot) -> WhatIfPanel:
    await first_picture(pilot)
    await pilot.press("w")
    await pilot.pause()
    return panel_of(pilot.app)


async def pick_model(pilot, letters: str, *, downs: int = 0) -> None:
    """Type ``letters`` into the model search, move ``downs`` down the matches, take one."""
    panel = panel_of(pilot.app)
    assert pilot.app.focused is panel.query_one("#f-model")
    await pilot.press(*letters)
    await pilot.press(*["down"] * downs, "enter")
    await pilot.pause()


async def go_to(pilot, field: str) -> Input:
    """Tab from wherever the focus is to ``field`` (keyboard only), and clear it."""
    target = panel_of(pilot.app).query_one(f"#f-{field}", Input)
    for _ in range(30):
        if pilot.app.focused is target:
            break
        await pilot.press("tab")
    assert pilot.app.focused is target, f"tab never reached {field}"
    await pilot.press("ctrl+u", "end", "ctrl+u")
    return target


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_w_opens_beside_the_live_view_or_as_a_screen_and_escape_closes(size):
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        panel = await open_panel(pilot)
        if size[0] >= NARROW_COLUMNS:
            assert not isinstance(app.screen, WhatIfScreen)
            assert panel.has_class("-docked")
            live = app.screen.query_one("#main")  # the panel sits in the side column, beside it
            assert live.region.width > 0 and panel.region.x >= live.region.right  # beside, not over
        else:
            assert isinstance(app.screen, WhatIfScreen)
            assert panel.region.width == size[0]
        assert "What if" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query(WhatIfPanel) and not isinstance(app.screen, WhatIfScreen)
        # Reopen; ``w`` closes it too once the focus is outside a text field.
        panel = await open_panel(pilot)
        await pilot.press("tab")  # the model field -> the engine choice
        assert not isinstance(app.focused, Input)
        await pilot.press("w")
        await pilot.pause()
        assert not app.screen.query(WhatIfPanel)


@pytest.mark.parametrize("size", [(40, 50), (120, 50), (200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_typing_picks_a_model_and_the_verdict_follows(size):
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        panel = await open_panel(pilot)
        assert "INVALID" in headline(app) and "pick a model" in headline(app)
        await pilot.press(*"gem4b")
        matches = panel.query_one("#wi-matches", OptionList)
        assert matches.display and matches.option_count >= 1
        shown = [matches.get_option_at_index(i).id for i in range(matches.option_count)]
        assert all("4b" in name for name in shown)
        await pilot.press("enter")
        await pilot.pause()
        assert panel.form.model == shown[0]
        assert panel.query_one("#f-model", Input).value == shown[0]
        assert not matches.display
        assert "INVALID" not in headline(app)
        assert headline(app).split()[1] in ("GREEN", "YELLOW", "RED")


async def test_a_w_typed_in_a_text_field_is_a_letter():
    app = demo_app()
    async with app.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        await pilot.press(*"qwen")
        assert panel.query_one("#f-model", Input).value == "qwen"
        assert app.screen.query(WhatIfPanel)


@pytest.mark.parametrize("size", [(40, 50), (140, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_bad_value_is_marked_in_place_and_the_verdict_says_why(size):
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        panel = await open_panel(pilot)
        await pick_model(pilot, "gem4b")
        field = await go_to(pilot, "gpu_memory_utilization")
        await pilot.press(*"1.5")
        await pilot.pause()
        error = panel.query_one("#e-gpu_memory_utilization", Static)
        reason = panel.result.errors["gpu_memory_utilization"]
        assert error.display and reason in str(error.render()) and "1.5" in reason
        assert field.has_class("-invalid")
        assert "INVALID" in headline(app) and "gpu mem util" in headline(app) and "1.5" in headline(app)
        assert "↳" in screen_text(app)
        await pilot.press("backspace", "backspace", "backspace", *"0.8")
        await pilot.pause()
        assert not error.display and not field.has_class("-invalid")
        assert "INVALID" not in headline(app)


async def test_pins_and_the_last_candidate_are_remembered_between_runs(state_path):
    app = demo_app()
    async with app.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        await pick_model(pilot, "gem4b")
        await pilot.press("+")
        first = panel.form
        field = await go_to(pilot, "gpu_memory_utilization")
        await pilot.press(*"0.8")
        await pilot.press("+")
        await pilot.pause()
        second = panel.form
        pins = panel.query_one("#wi-pins", OptionList)
        assert pins.option_count == 2
        lines = [str(pins.get_option_at_index(i).prompt) for i in range(2)]
        assert all(line.split()[1] in ("GREEN", "YELLOW", "RED") for line in lines)
        assert "util 0.8" in lines[1]
        assert field.value == "0.8"  # "+" pinned, it was not typed into the field
        await pilot.press("escape")
        await pilot.pause()
    saved = yaml.safe_load(state_path.read_text())
    assert len(saved["pins"]) == 2

    again = demo_app()
    async with again.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        assert panel.form == second
        assert panel.query_one("#f-gpu_memory_utilization", Input).value == "0.8"
        pins = panel.query_one("#wi-pins", OptionList)
        assert pins.option_count == 2
        # enter on a pin loads it into the form
        pins.focus()
        pins.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert panel.form == first
        # delete unpins the highlighted one
        await pilot.press("delete")
        await pilot.pause()
        assert pins.option_count == 1


async def test_a_corrupt_state_file_is_one_line_in_the_panel(state_path):
    app = demo_app()
    state_path.parent.mkdir(parents=True)
    state_path.write_text("version: 1\npins: [\n")
    async with app.run_test(size=(140, 50)) as pilot:
        await open_panel(pilot)
        text = screen_text(app)
        assert "starting fresh" in text
        assert panel_of(app).form.model == ""


async def test_escape_hides_the_model_matches_before_it_closes_the_panel():
    app = demo_app()
    async with app.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        await pilot.press(*"gem")
        matches = panel.query_one("#wi-matches", OptionList)
        assert matches.display
        await pilot.press("escape")
        await pilot.pause()
        assert not matches.display and app.screen.query(WhatIfPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query(WhatIfPanel)


async def test_an_empty_model_field_offers_the_last_candidates_whole(state_path):
    older = FormState(model="google/medgemma-4b-it", tensor_parallel_size="2", max_model_len="8192")
    newer = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)
    save_memory(WhatIfMemory().remember(older).remember(newer), state_path)
    app = demo_app()
    async with app.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        assert panel.form == newer
        await pilot.press("ctrl+u", "end", "ctrl+u")  # clear the model field
        matches = panel.query_one("#wi-matches", OptionList)
        assert matches.display and matches.option_count == 2
        assert "TP=2" in str(matches.get_option_at_index(1).prompt)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert panel.form == older
        assert panel.query_one("#f-tensor_parallel_size", Input).value == "2"
        assert panel.query_one("#r-max_model_len").display  # vLLM fields shown again


async def test_a_suggestion_is_applied_with_one_key(state_path):
    start = FormState(model="amsaravi/medgemma-4b-it:q8", engine=OLLAMA)
    save_memory(WhatIfMemory(current=start), state_path)
    app = demo_app()
    async with app.run_test(size=(140, 50)) as pilot:
        panel = await open_panel(pilot)
        assert "RED" in headline(app)
        first = panel.result.suggestions[0]
        assert isinstance(app.focused, Input)  # "=" works while typing, it is never typed
        await pilot.press("=")
        await pilot.pause()
        assert panel.form != start
        assert panel.result.verdict == first.verdict
        assert first.verdict.upper() in headline(app)
        changed = [name for name in first.changes if name != "stopped"]
        for name in changed:
            assert panel.query_one(f"#f-{name}", Input).value == getattr(panel.form, name) != ""
        # From the suggestion list, a digit applies the n-th one.
        second = panel.result.suggestions[1] if len(panel.result.suggestions) > 1 else None
        if second is not None:
            before = panel.form
            panel.query_one("#wi-suggestions", OptionList).focus()
            await pilot.press("2")
            await pilot.pause()
            assert panel.form != before and panel.result.verdict == second.verdict


async def test_pinned_candidates_keep_live_verdicts_as_the_node_changes(state_path):
    """The seed's two Ollama models and the vLLM TP=2 variant, pinned side by side."""
    pins = (
        FormState(model="medgemma-27b-it:q8", engine=OLLAMA, num_ctx="8192"),
        FormState(model="amsaravi/medgemma-4b-it:q8", engine=OLLAMA, num_ctx="8192"),
        FormState(model="google/medgemma-4b-it", tensor_parallel_size="2", gpu_memory_utilization="0.85",
                  max_model_len="8192"),
    )
    memory = WhatIfMemory()
    for pin in pins:
        memory = memory.pin(pin)
    save_memory(memory, state_path)
    app = demo_app()
    async with app.run_test(size=(160, 60)) as pilot:
        panel = await open_panel(pilot)
        listed = panel.query_one("#wi-pins", OptionList)
        words = lambda: [str(listed.get_option_at_index(i).prompt).split()[1] for i in range(3)]  # noqa: E731
        assert "GREEN" not in words()  # 3.8 GiB free in all: none fits well
        # The node changes: the vLLM replica is gone (the demo node as if it stopped).
        from host_app import StoppedDemoSource

        app.feed.source = StoppedDemoSource()
        await next_tick(pilot)
        assert words() == ["GREEN", "GREEN", "GREEN"]
        assert [r.verdict for r in panel.pin_results] == ["green"] * 3


async def test_the_panel_moves_when_the_terminal_is_resized_and_keeps_the_form(state_path):
    save_memory(WhatIfMemory(current=FormState(model="google/medgemma-4b-it", tensor_parallel_size="2")), state_path)
    app = demo_app()
    async with app.run_test(size=(160, 50)) as pilot:
        panel = await open_panel(pilot)
        assert not isinstance(app.screen, WhatIfScreen)
        await pilot.press("+")  # a pin, to see that it moves along
        await pilot.resize_terminal(80, 40)
        await pilot.pause(0.2)
        assert isinstance(app.screen, WhatIfScreen)
        moved = panel_of(app)
        assert moved is not panel and moved.form == panel.form
        assert moved.query_one("#wi-pins", OptionList).option_count == 1
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.2)
        assert not isinstance(app.screen, WhatIfScreen)
        assert panel_of(app).has_class("-docked") and panel_of(app).form == panel.form
