"""Roles from the process titles that serving engines really set."""

import pytest

from vramtop.analysis import roles
from vramtop.snapshot import HostProcess


def host(title: str, cmdline: tuple[str, ...] | None = None, name: str = "python3") -> HostProcess:
    return HostProcess(pid=10, ppid=1, name=name, title=title, cmdline=cmdline if cmdline is not None else tuple(title.split()))


@pytest.mark.parametrize(
    "title, engine, kind, label, tp, pp, dp",
    [
        ("VLLM::Worker_TP0", "vllm", "worker", "Worker_TP0", 0, None, None),
        ("VLLM::Worker_PP1_TP3", "vllm", "worker", "Worker_PP1_TP3", 3, 1, None),
        ("VLLM::Worker_DP2_TP1", "vllm", "worker", "Worker_DP2_TP1", 1, None, 2),
        ("VLLM::Worker_TP0_EP0", "vllm", "worker", "Worker_TP0_EP0", 0, None, None),
        ("VLLM::Worker", "vllm", "worker", "Worker", None, None, None),
        ("VLLM::EngineCore", "vllm", "engine", "EngineCore", None, None, None),
        ("VLLM::EngineCore_DP1", "vllm", "engine", "EngineCore_DP1", None, None, 1),
    ],
)
def test_vllm_titles(title, engine, kind, label, tp, pp, dp):
    role = roles.classify(host(title))
    assert (role.engine, role.kind, role.label, role.tp_rank, role.pp_rank, role.dp_rank) == (engine, kind, label, tp, pp, dp)


def test_ray_serve_replica_names_app_and_deployment():
    role = roles.classify(host("ray::ServeReplica:medgemma:VLLMDeployment"))
    assert (role.engine, role.kind, role.app, role.deployment) == ("ray", "replica", "medgemma", "VLLMDeployment")
    llm = roles.classify(host("ray::ServeReplica:llms:LLMServer:qwen2_5-0_5b-instruct.initialize_and_get_metadata()"))
    assert (llm.app, llm.deployment) == ("llms", "LLMServer:qwen2_5-0_5b-instruct")


@pytest.mark.parametrize(
    "title, engine, kind",
    [
        ("ray::RayWorkerWrapper.execute_method", "ray", "worker"),
        ("VLLM::APIServer", "vllm", "api-server"),
        ("VLLM::APIServer_1", "vllm", "api-server"),
        ("ray::ProxyActor", "ray", "actor"),
        ("/usr/bin/python3 /usr/local/bin/vllm serve Qwen/Qwen2.5-7B --tensor-parallel-size 2", "vllm", "api-server"),
        ("python -m vllm.entrypoints.openai.api_server --model m", "vllm", "api-server"),
        ("/usr/bin/ollama runner --model /root/.ollama/models/blobs/sha256-ab --port 40123", "ollama", "runner"),
        ("/usr/lib/ollama/ollama_llama_server --model x", "ollama", "runner"),
        ("/usr/local/bin/ollama serve", "ollama", "server"),
        ("./llama-server -m model.gguf -ngl 99", "llama.cpp", "server"),
        ("python3 -m sglang.launch_server --model-path m", "sglang", "api-server"),
        ("text-generation-launcher --model-id m", "tgi", "launcher"),
        ("python3 train.py", "other", "process"),
    ],
)
def test_other_engines(title, engine, kind):
    role = roles.classify(host(title))
    assert (role.engine, role.kind) == (engine, kind)


def test_hidden_process_is_unknown():
    assert roles.classify(None).engine == roles.UNKNOWN
