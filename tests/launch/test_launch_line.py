"""The launch line of every seed candidate on the demo node, read back by the launch parser
into the fit engine, gets the verdict it was written for."""

import re
import shlex

import pytest

from vramtop.fit.command import plan
from vramtop.fit.fields import candidate_from_fields
from vramtop.fit.placement import node_from_snapshot
from vramtop.fit.verdict import evaluate
from vramtop.launch.engine_args import parse
from vramtop.report.candidates import SEED_CANDIDATES, parse_candidate
from vramtop.sources.demo import DemoSource

# The seed analysis's questions (README, "Would it fit?"): the two Ollama models, and the 4B on
# vLLM at utilization 0.95 and 0.85 with TP 2 and 4, as things run and with the replica stopped.
VLLM_SEED = ("medgemma-4b-it,tp=2,util=0.95,max_model_len=8192", "medgemma-4b-it,tp=4,util=0.85,max_model_len=8192",
             "medgemma-4b-it,tp=2,util=0.85,max_model_len=8192,stopped=ray:4000", "medgemma-27b,tp=4,stopped=ray:4000",
             "medgemma-4b-it,tp=2,stopped=ray:4000")


@pytest.fixture(scope="module")
def demo():
    return node_from_snapshot(DemoSource().sample())


def _read_back(line):
    """argv and env from the line's text, as a shell would split it."""
    first, *rest = line.text.splitlines()
    words = shlex.split(first)
    n = 0
    while n < len(words) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[n]):  # leading NAME=VALUE
        n += 1
    env = dict(w.split("=", 1) for w in words[:n])
    argv = words[n:]
    model = shlex.split(rest[0])[-1] if rest else None
    return argv, env, model


@pytest.mark.parametrize("text", SEED_CANDIDATES + VLLM_SEED)
def test_the_line_reads_back_to_the_same_verdict(text, demo):
    candidate = parse_candidate(text)
    ref = text.split(",")[0]
    p = plan(candidate, demo, ref)
    argv, env, model = _read_back(p.line)
    parsed = parse(argv, env, model=model)
    fields = dict(parsed.fields, gpus=parsed.visible_devices, stopped=",".join(candidate.stopped))
    back, errors = candidate_from_fields(fields)
    assert back is not None, errors
    assert evaluate(back, demo, suggest=False).verdict == p.result.verdict
    assert back.gpus == tuple(g.gpu_index for g in p.result.per_gpu) or candidate.engine == "ollama"
    if candidate.engine == "vllm":
        assert argv[:3] == ["vllm", "serve", candidate.model.name]
        assert argv[3:5] == ["--tensor-parallel-size", str(candidate.tensor_parallel_size)]


def test_default_utilization_is_lowered_to_pass_the_start_check_with_a_margin(demo):
    """The 4B at TP 2 with the replica stopped: the default 0.9 would pass; a stated margin of
    512 MiB at vLLM's start-up check stays on every GPU the line names."""
    p = plan(parse_candidate("medgemma-4b-it,tp=2,stopped=ray:4000"), demo)
    assert p.margin_mib is not None and p.margin_mib >= 512
    assert f"{p.margin_mib:,} MiB to spare" in " ".join(p.line.notes)
    assert "stop ray:4000 first" in " ".join(p.line.notes)


def test_unknown_flags_are_left_alone_and_aliases_read():
    parsed = parse(["vllm", "serve", "google/medgemma-4b-it", "-tp", "2", "--port", "8000",
                    "--gpu-memory-utilization=0.7", "--enforce-eager", "--served-model-name", "m"], {})
    assert dict(parsed.fields) == {"engine": "vllm", "model": "google/medgemma-4b-it", "tensor_parallel_size": "2",
                                   "gpu_memory_utilization": "0.7", "enforce_eager": "yes"}
    parsed = parse(["python", "-m", "vllm.entrypoints.openai.api_server", "--model", "Qwen/Qwen3-8B"],
                   {"CUDA_VISIBLE_DEVICES": "1,3"})
    assert parsed.fields["model"] == "Qwen/Qwen3-8B" and parsed.visible_devices == "1,3"


def test_fit_prints_the_line_alone_with_command_and_in_its_json():
    import json
    import subprocess
    import sys

    args = [sys.executable, "-m", "vramtop", "fit", "medgemma-4b-it", "--tp", "2", "--assume-stopped", "ray:4000", "--demo"]
    only = subprocess.run([*args, "--command"], capture_output=True, text=True, timeout=60)
    assert only.returncode == 1  # YELLOW: only if the replica is stopped
    assert only.stdout.startswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1 vllm serve google/medgemma-4b-it ")
    assert only.stdout.count("\n") == 1 and "# stop ray:4000 first" in only.stderr
    doc = json.loads(subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=60).stdout)
    assert doc["launch"]["text"] == only.stdout.strip() and doc["launch"]["verdict"] == doc["verdict"]


def test_the_report_carries_the_same_line_as_fit():
    import json
    import subprocess
    import sys

    report = json.loads(subprocess.run([sys.executable, "-m", "vramtop", "report", "--demo", "--json"],
                                       capture_output=True, text=True, timeout=120).stdout)
    for cand in report["candidates"]:  # the seed's two Ollama models
        model = cand["text"].split(",")[0]
        fit = subprocess.run([sys.executable, "-m", "vramtop", "fit", model, "--engine", "ollama", "--demo", "--command"],
                             capture_output=True, text=True, timeout=60)
        assert cand["launch"]["text"] == fit.stdout.rstrip("\n")
        assert cand["launch"]["then"] == ["ollama", "run", model]


def test_replicas_become_a_serve_config_capped_at_what_the_node_holds(demo):
    """Three replicas of TP 2 on the demo's four GPUs (the running replica assumed stopped): two
    fit, so autoscaling is capped at two and each replica asks a placement group of two GPUs."""
    p = plan(parse_candidate("medgemma-4b-it,tp=2,replicas=3,max_model_len=8192,stopped=ray:4000"), demo)
    config = p.line.serve_config
    assert p.result.replicas_placed == 2 and p.result.verdict == "red"
    assert config["deployment_config"]["autoscaling_config"] == {"min_replicas": 2, "max_replicas": 2}
    assert config["placement_group_config"]["bundles"] == [{"GPU": 1}, {"GPU": 1}]
    assert config["engine_kwargs"]["tensor_parallel_size"] == 2
    assert config["model_loading_config"]["model_id"] == "google/medgemma-4b-it"


@pytest.mark.parametrize("text,on", [
    ("llama-3.1-70b,pp=3", "3x64GiB"),  # 64 heads: no TP of 3; pipeline stages instead
    ("qwen3-30b-a3b,dp=2,ep=yes", "2x48GiB"),
    ("medgemma-4b-it,skip_mm_profiling=yes,limit_mm_per_prompt=image=2", "1x24GiB"),
])
def test_parallel_and_multimodal_flags_read_back_to_the_same_candidate(text, on):
    """``vramtop launch -- vllm serve ...`` reads pipeline, data and expert parallel and the
    multimodal flags as vllm/engine/arg_utils.py spells them, so the judged line is the run one."""
    from vramtop.fit.placement import paper_node

    node = paper_node(on)
    candidate = parse_candidate(text)
    p = plan(candidate, node)
    argv, env, model = _read_back(p.line)
    back, errors = candidate_from_fields(dict(parse(argv, env, model=model).fields, gpus=env.get("CUDA_VISIBLE_DEVICES")))
    assert back is not None, errors
    for name in ("pipeline_parallel_size", "data_parallel_size", "enable_expert_parallel", "skip_mm_profiling",
                 "limit_mm_per_prompt"):
        assert getattr(back, name) == getattr(p.candidate, name), name
    assert evaluate(back, node, suggest=False).verdict == p.result.verdict


def test_engine_args_short_aliases():
    parsed = parse(["vllm", "serve", "Qwen/Qwen3-30B-A3B", "-pp", "2", "-dp", "2", "-ep", "-q", "fp8",
                    "--mm-encoder-tp-mode=data"], {})
    assert dict(parsed.fields) == {"engine": "vllm", "model": "Qwen/Qwen3-30B-A3B", "pipeline_parallel_size": "2",
                                   "data_parallel_size": "2", "enable_expert_parallel": "yes",
                                   "quantization": "fp8", "mm_encoder_tp_mode": "data"}
