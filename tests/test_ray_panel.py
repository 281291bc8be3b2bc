"""The Ray panel in a host app: rows per deployment, keyed updates, 40 and 120 columns."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult

from vramtop.ray.feasibility import analyze
from vramtop.ray.model import NOT_FOUND, Autoscaling, Deployment, LLMConfig, Node, RayState, Replica
from vramtop.widgets.ray_panel import DETAIL_LINES, RayPanel, shown_details

NOW = 1_000_000.0


def seed_state(pending: bool = True) -> RayState:
    reps = (Replica("r1", "RUNNING", "SERVE_REPLICA::seed#FakeLLM#r1", pid=10, node_id="n1"),)
    if pending:
        reps += (Replica("r2", "STARTING", "SERVE_REPLICA::seed#FakeLLM#r2", start_time_s=NOW - 42),)
    seed = Deployment(app="seed", name="FakeLLM", status="UPDATING", target_num_replicas=2,
                      message="Deployment 'FakeLLM' in application 'seed' has 1 replicas that have taken more than 30s "
                              "to be scheduled. Resources required for each replica: {\"GPU\": 4.0}, total resources "
                              "available: {}.",
                      autoscaling=Autoscaling(2, 16, target_ongoing_requests=5), num_gpus=4, num_cpus=0,
                      required_resources={"GPU": 4}, replicas=reps)
    llm = Deployment(app="llm", name="LLMServer:qwen", status="HEALTHY", target_num_replicas=1,
                     autoscaling=Autoscaling(1, 1), num_gpus=0, required_resources={"CPU": 1},
                     llm=LLMConfig("Qwen/qwen", tensor_parallel_size=2, gpu_memory_utilization=0.85, max_model_len=8192))
    node = Node("n1", hostname="h", state="ALIVE", resources_total={"GPU": 8, "CPU": 16}, resources_used={"GPU": 4})
    return RayState(address="http://127.0.0.1:8265", status="ok", checked_at=NOW, last_success=NOW,
                    ray_version="2.60.0", deployments=(seed, llm), nodes=(node,))


class Host(App):
    def compose(self) -> ComposeResult:
        yield RayPanel()


async def test_rows_per_deployment_with_replicas_gpus_and_fits_at_40_columns():
    app = Host()
    async with app.run_test(size=(40, 30)) as pilot:
        panel = app.query_one(RayPanel)
        st = replace(seed_state(), nodes=(replace(seed_state().nodes[0], resources_total={"GPU": 4, "CPU": 16}),))
        panel.show(st, analyze(st))
        await pilot.pause()
        table = panel.table
        assert [c.key.value for c in table.ordered_columns] == ["deployment", "replicas", "gpus", "fits"]
        assert [c.plain for c in table.get_row("seed/FakeLLM")[1:]] == ["1/2 +1p", "4", "1"]
        details = str(panel.query_one("#ray-details").render())
        assert "1 replica pending for 42 s" in details
        assert "min_replicas=2 cannot be met" in details and "autoscaling can never add replicas" in details
        assert "Qwen/qwen TP=2" in details
        assert table.virtual_size.width <= 40  # no horizontal scrolling at 40 columns


async def test_updates_are_keyed_the_cursor_stays_and_gone_deployments_leave():
    app = Host()
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(RayPanel)
        st = seed_state()
        panel.show(st, analyze(st))
        await pilot.pause()
        table = panel.table
        assert len(table.ordered_columns) == 8
        table.move_cursor(row=table.get_row_index("llm/LLMServer:qwen"))
        added = []
        orig_add = table.add_row
        table.add_row = lambda *a, **k: added.append(k.get("key")) or orig_add(*a, **k)
        fixed = seed_state(pending=False)
        panel.show(fixed, analyze(fixed))
        await pilot.pause()
        assert added == []  # no row was rebuilt
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == "llm/LLMServer:qwen"
        assert table.get_cell("seed/FakeLLM", "replicas").plain == "1/2"
        only_llm = replace(fixed, deployments=fixed.deployments[1:])
        panel.show(only_llm, analyze(only_llm))
        await pilot.pause()
        assert table.row_count == 1


async def test_no_ray_is_one_quiet_line():
    app = Host()
    async with app.run_test(size=(80, 10)) as pilot:
        panel = app.query_one(RayPanel)
        panel.show(RayState(address="http://127.0.0.1:8265", status=NOT_FOUND, checked_at=NOW, error="connection refused"))
        await pilot.pause()
        assert str(panel.query_one("#ray-summary").render()) == "no Ray at 127.0.0.1:8265 · --ray-address"
        assert panel.has_class("-quiet") and panel.table.row_count == 0
        assert panel.region.height == 1  # one line, not a box


async def test_a_status_change_alone_reaches_its_cell_and_a_returning_deployment_is_shown_again():
    """Rows whose analysis did not move are skipped: the status, read from the deployment and
    not the analysis, must still count as a move, and a deployment that left must come back."""
    app = Host()
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(RayPanel)
        st = seed_state(pending=False)
        panel.show(st, analyze(st))
        await pilot.pause()
        table = panel.table
        assert table.get_cell("llm/LLMServer:qwen", "status").plain == "HEALTHY"
        llm = st.deployments[1]
        sick = replace(st, deployments=(st.deployments[0], replace(llm, status="UNHEALTHY")))
        assert analyze(sick).deployment(llm.key) == analyze(st).deployment(llm.key)
        panel.show(sick, analyze(sick))
        await pilot.pause()
        assert table.get_cell("llm/LLMServer:qwen", "status").plain == "UNHEALTHY"
        alone = replace(sick, deployments=sick.deployments[:1])
        panel.show(alone, analyze(alone))
        await pilot.pause()
        panel.show(sick, analyze(sick))
        await pilot.pause()
        assert table.row_count == 2 and table.get_cell("llm/LLMServer:qwen", "status").plain == "UNHEALTHY"


def test_details_past_what_fits_under_the_table_are_counted_not_laid_out():
    lines = [f"dep-{n}: 1 replica pending (no node has the resources)" for n in range(200)]
    shown = shown_details(lines).split("\n")
    assert len(shown) == DETAIL_LINES and shown[:-1] == lines[:DETAIL_LINES - 1]
    assert shown[-1] == f"… {200 - DETAIL_LINES + 1} more lines"
    assert shown_details(lines[:DETAIL_LINES]) == "\n".join(lines[:DETAIL_LINES])  # all fit: all shown
