"""Serving instances found on real process trees: every process below is started by its real
parent with the title or command line its engine gives it (the engine's source file is cited
with each shape), the stand-in NVML driver lists the ones holding GPU memory under their real
PIDs, and ``vramtop --once --json`` is read as a user would read it."""

from __future__ import annotations

from engine_tree import Proc, proc_tree, run_once_json

WORKER_MIB = 20_730


def by_pid(doc: dict, pid: int) -> dict:
    (inst,) = [i for i in doc["instances"] if pid in i["pids"]]
    return inst


def members(inst: dict) -> dict[int, tuple[str, str | None, dict[str, int]]]:
    return {m["pid"]: (m["role"], m["label"], m["per_gpu_mib"]) for m in inst["members"]}


def test_the_seed_node_as_it_really_runs_is_one_instance_of_86154_mib(tmp_path):
    # Ray starts actor processes as children of the raylet (src/ray/raylet/worker_pool.cc) and
    # titles them ray::<ActorClass>; a Serve replica's class is ServeReplica:<app>:<deployment>
    # (python/ray/serve/_private/common.py, DeploymentID.to_replica_actor_class_name). The replica
    # creates CUDA contexts on the four GPUs it manages (the seed's 519/529/531/421 MiB). vLLM's
    # engine core is its child (vllm/v1/engine/utils.py, launch_core_engines; titled in
    # vllm/v1/engine/core.py) and starts one worker per TP rank (vllm/v1/executor/multiproc_executor.py).
    replica_mib = {0: 519, 1: 529, 2: 531, 3: 421}
    procs = (
        Proc("raylet", argv=("raylet", "--node_ip_address=10.0.0.5")),
        Proc("replica", "ray::ServeReplica:medgemma:VLLMDeployment", "raylet", replica_mib),
        Proc("engine", "VLLM::EngineCore", "replica", {0: 1_234}),
        *(Proc(f"w{r}", f"VLLM::Worker_TP{r}", "engine", {r: WORKER_MIB}) for r in range(4)),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 4))
    assert [g["used_mib"] for g in doc["gpus"]] == [22_483, 21_259, 21_261, 21_151]  # the seed's figures
    (inst,) = doc["instances"]
    assert inst["total_mib"] == 86_154 and inst["per_gpu_mib"] == {"0": 22_483, "1": 21_259, "2": 21_261, "3": 21_151}
    assert inst["engine"] == "vllm" and inst["tp_size"] == 4 and inst["name"] == "medgemma/VLLMDeployment"
    assert inst["root_pid"] == tree.pid["replica"] and inst["replica"] is None  # no Ray dashboard asked
    assert members(inst) == {
        tree.pid["replica"]: ("replica", "ServeReplica", {str(g): m for g, m in replica_mib.items()}),
        tree.pid["engine"]: ("engine", "EngineCore", {"0": 1_234}),
        **{tree.pid[f"w{r}"]: ("worker", f"Worker_TP{r}", {str(r): WORKER_MIB}) for r in range(4)},
    }
    assert {p["instance"] for p in doc["processes"]} == {inst["key"]}


def test_vllm_v1_api_server_engine_core_and_tp_workers(tmp_path):
    # `vllm serve` (vllm/entrypoints/cli/serve.py) keeps its command line; the engine core and
    # its workers are titled by set_process_title (vllm/utils/system_utils.py).
    procs = (
        Proc("api", argv=("vllm", "serve", "Qwen/Qwen2.5-7B-Instruct", "--tensor-parallel-size", "2", "--port", "8000")),
        Proc("engine", "VLLM::EngineCore", "api"),
        Proc("w0", "VLLM::Worker_TP0", "engine", {0: 15_000}),
        Proc("w1", "VLLM::Worker_TP1", "engine", {1: 15_000}),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["name"] == "vLLM Qwen/Qwen2.5-7B-Instruct" and inst["tp_size"] == 2 and inst["total_mib"] == 30_000
    assert inst["root_pid"] == tree.pid["api"] and inst["api_pid"] == tree.pid["api"]
    assert sorted(inst["pids"]) == sorted([tree.pid["w0"], tree.pid["w1"]]) and inst["note"] is None


def test_vllm_data_parallel_with_two_api_servers_and_engine_cores_that_own_their_gpus(tmp_path):
    # --api-server-count 2: the main process starts APIServer_0/1 (vllm/entrypoints/cli/serve.py,
    # run_multi_api_server) and one EngineCore_DP<n> per DP rank (vllm/v1/engine/core.py); with
    # TP=1 there is no worker: each engine core owns its GPU.
    procs = (
        Proc("main", argv=("vllm", "serve", "m", "--data-parallel-size", "2", "--api-server-count", "2")),
        Proc("api0", "VLLM::APIServer_0", "main"),
        Proc("api1", "VLLM::APIServer_1", "main"),
        Proc("dp0", "VLLM::EngineCore_DP0", "main", {0: 9_000}),
        Proc("dp1", "VLLM::EngineCore_DP1", "main", {1: 9_000}),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert (inst["tp_size"], inst["dp_size"], inst["total_mib"]) == (1, 2, 18_000)
    assert inst["root_pid"] == tree.pid["main"]
    assert members(inst)[tree.pid["dp1"]][:2] == ("engine", "EngineCore_DP1")


def test_vllm_dp_and_tp_workers_under_several_engine_cores(tmp_path):
    # Workers titled Worker_DP<d>_TP<t> (vllm/v1/executor/multiproc_executor.py).
    procs = [Proc("main", argv=("vllm", "serve", "m", "-dp", "2", "-tp", "2"))]
    for d in range(2):
        procs.append(Proc(f"dp{d}", f"VLLM::EngineCore_DP{d}", "main"))
        procs += [Proc(f"w{d}{t}", f"VLLM::Worker_DP{d}_TP{t}", f"dp{d}", {2 * d + t: 10_000}) for t in range(2)]
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 4))
    (inst,) = doc["instances"]
    assert (inst["tp_size"], inst["dp_size"], inst["total_mib"], len(inst["members"])) == (2, 2, 40_000, 4)


def test_a_process_name_prefix_other_than_vllm(tmp_path):
    # VLLM_PROCESS_NAME_PREFIX changes the part before "::" (vllm/envs.py, vllm/utils/system_utils.py).
    procs = (
        Proc("engine", "acme::EngineCore", None),
        Proc("w0", "acme::Worker_PP0_TP0", "engine", {0: 8_000}),
        Proc("w1", "acme::Worker_PP1_TP0", "engine", {1: 8_000}),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["engine"] == "vllm" and inst["root_pid"] == tree.pid["engine"]
    assert (inst["tp_size"], inst["pp_size"]) == (1, 2)
    assert members(inst)[tree.pid["w1"]][:2] == ("worker", "Worker_PP1_TP0")


def test_vllm_without_setproctitle_is_told_from_its_command_line(tmp_path):
    # Without the setproctitle package set_process_title does nothing (vllm/utils/system_utils.py):
    # forked children keep `python3 -m vllm.entrypoints.openai.api_server ...` as their title.
    argv = ("-m", "vllm.entrypoints.openai.api_server", "--model", "m", "--tensor-parallel-size", "2")
    procs = (
        Proc("api", argv=argv),
        Proc("engine", None, "api", fork=True),
        Proc("w0", None, "engine", {0: 7_000}, fork=True),
        Proc("w1", None, "engine", {1: 7_000}, fork=True),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["engine"] == "vllm" and inst["name"] == "vLLM m" and inst["tp_size"] == 2
    assert inst["root_pid"] == tree.pid["api"] and inst["total_mib"] == 14_000
    # they hold GPU memory below the API server under its command line: workers, rank unknown
    assert [members(inst)[tree.pid[w]][:2] for w in ("w0", "w1")] == [("worker", "worker")] * 2
    assert {p["role"] for p in doc["processes"]} == {"worker"}


def test_vllm_v0_main_process_is_tp_rank_0_and_its_forked_workers_ranks_1_to_n(tmp_path):
    # vLLM V0: the driver worker runs in the main process; vllm/executor/multiproc_gpu_executor.py
    # starts ranks 1..N-1 in order, forked by default (VLLM_WORKER_MULTIPROC_METHOD, vllm/envs.py).
    argv = ("-m", "vllm.entrypoints.openai.api_server", "--model", "m", "--tensor-parallel-size", "3")
    procs = (
        Proc("main", argv=argv, gpu_mib={0: 12_000}),
        Proc("r1", None, "main", {1: 11_500}, fork=True),
        Proc("r2", None, "main", {2: 11_500}, fork=True),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 3))
    (inst,) = doc["instances"]
    assert inst["total_mib"] == 35_000 and inst["tp_size"] == 3
    roles = members(inst)
    assert roles[tree.pid["main"]][:2] == ("api-server", "APIServer+Worker_TP0")
    assert [roles[tree.pid[r]][:2] for r in ("r1", "r2")] == [("worker", "VllmWorkerProcess_TP1"),
                                                                 ("worker", "VllmWorkerProcess_TP2")]
    assert [p["label"] for p in doc["processes"]] == ["APIServer+Worker_TP0", "VllmWorkerProcess_TP1",
                                                      "VllmWorkerProcess_TP2"]


def test_torchrun_launcher_one_process_per_rank(tmp_path):
    # torch/distributed/run.py (torchrun) starts one `python -u script` per rank as its children,
    # as vLLM's external_launcher executor expects (examples/offline_inference/torchrun_example.py).
    procs = (
        Proc("launcher", argv=("torchrun", "--nproc-per-node=2", "torchrun_example.py")),
        Proc("rank0", None, "launcher", {0: 6_000}, argv=("torchrun_example.py",)),
        Proc("rank1", None, "launcher", {1: 6_000}, argv=("torchrun_example.py",)),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["root_pid"] == tree.pid["launcher"] and inst["engine"] == "torchrun" and inst["total_mib"] == 12_000
    assert {m["role"] for m in inst["members"]} == {"worker"}


def test_sglang_server_schedulers_and_detokenizer(tmp_path):
    # sglang/srt/entrypoints/engine.py starts one scheduler per TP rank and the detokenizer as
    # children of the launch_server process; sglang/srt/managers/scheduler.py titles them
    # sglang::scheduler_TP<n>, sglang/srt/managers/detokenizer_manager.py sglang::detokenizer.
    procs = (
        Proc("server", argv=("-m", "sglang.launch_server", "--model-path", "Qwen/Qwen2.5-7B", "--tp-size", "2", "--port", "30000")),
        Proc("s0", "sglang::scheduler_TP0", "server", {0: 16_000}),
        Proc("s1", "sglang::scheduler_TP1", "server", {1: 16_000}),
        Proc("detok", "sglang::detokenizer", "server"),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["engine"] == "sglang" and inst["name"] == "SGLang Qwen/Qwen2.5-7B"
    assert inst["tp_size"] == 2 and inst["api_pid"] == tree.pid["server"] and inst["root_pid"] == tree.pid["server"]


def test_sglang_data_parallel_controller_and_the_router_above_it(tmp_path):
    # With --dp-size, sglang/srt/managers/data_parallel_controller.py (sglang::data_parallel_controller)
    # starts sglang::scheduler_DP<d>_TP<t>; the router (sglang_router/launch_server.py) starts the server.
    procs = (
        Proc("router", argv=("-m", "sglang_router.launch_server", "--model-path", "m", "--dp-size", "2")),
        Proc("server", None, "router", fork=True),
        Proc("ctl", "sglang::data_parallel_controller", "server"),
        Proc("s0", "sglang::scheduler_DP0_TP0", "ctl", {0: 9_000}),
        Proc("s1", "sglang::scheduler_DP1_TP0", "ctl", {1: 9_000}),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["root_pid"] == tree.pid["router"] and inst["dp_size"] == 2 and inst["total_mib"] == 18_000


def test_tgi_launcher_shards_and_router(tmp_path):
    # launcher/src/main.rs starts `text-generation-server serve <model> --uds-path <path>-<rank>`
    # per shard, then `text-generation-router`, all its children.
    procs = (
        Proc("launcher", argv=("text-generation-launcher", "--model-id", "bigscience/bloom-560m", "--num-shard", "2")),
        *(Proc(f"shard{r}", None, "launcher", {r: 5_000},
               argv=("text-generation-server", "serve", "bigscience/bloom-560m", "--uds-path",
                     f"/tmp/text-generation-server-{r}", "--sharded")) for r in range(2)),
        Proc("router", None, "launcher", argv=("text-generation-router", "--port", "3000")),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["engine"] == "tgi" and inst["tp_size"] == 2 and inst["root_pid"] == tree.pid["launcher"]
    assert members(inst)[tree.pid["shard1"]][:2] == ("worker", "shard1")
    assert inst["api_pid"] == tree.pid["launcher"]  # the router is its child; the launcher holds its --port


def test_ollama_runners_are_one_instance_each_and_llama_server_one_process(tmp_path):
    # Ollama's server starts one runner per loaded model (llm/server.go: `ollama runner --model ...`);
    # llama.cpp's llama-server (tools/server) is one process.
    procs = (
        Proc("top", argv=("sh-like-supervisor",)),
        Proc("ollama", None, "top", argv=("ollama", "serve")),
        Proc("r1", None, "ollama", {0: 5_000}, argv=("ollama", "runner", "--model", "/m/blobs/sha256-a", "--port", "40001")),
        Proc("r2", None, "ollama", {1: 3_000}, argv=("ollama", "runner", "--model", "/m/blobs/sha256-b", "--port", "40002")),
        Proc("llama", None, "top", {1: 4_000}, argv=("llama-server", "-m", "model.gguf", "-ngl", "99")),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    assert len(doc["instances"]) == 3
    assert by_pid(doc, tree.pid["r1"])["pids"] == [tree.pid["r1"]]
    assert by_pid(doc, tree.pid["r2"])["engine"] == "ollama"
    llama = by_pid(doc, tree.pid["llama"])
    assert llama["engine"] == "llama.cpp" and llama["api_pid"] == tree.pid["llama"] and llama["note"] is None


def test_tensorrt_llm_mpi_ranks_under_mpirun(tmp_path):
    # tensorrt_llm/llmapi/trtllm-llmapi-launch: `mpirun -n 2 trtllm-llmapi-launch trtllm-serve ...`
    # runs one rank per GPU, each a child of mpirun.
    procs = (
        Proc("mpirun", argv=("mpirun", "-n", "2", "trtllm-llmapi-launch", "trtllm-serve", "m", "--tp_size", "2")),
        *(Proc(f"rank{r}", None, "mpirun", {r: 7_000},
               argv=("trtllm-llmapi-launch", "trtllm-serve", "m", "--tp_size", "2")) for r in range(2)),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["root_pid"] == tree.pid["mpirun"] and inst["engine"] == "tensorrt-llm" and inst["tp_size"] == 2


def test_tensorrt_llm_workers_that_a_single_trtllm_serve_spawns_through_mpi(tmp_path):
    # A plain `trtllm-serve m --tp_size 2` is one MPI process (world size 1) that needs two ranks:
    # tensorrt_llm/llmapi/mpi_session.py (need_spawn_mpi_workers, MpiPoolSession) starts them with
    # mpi4py's MPIPoolExecutor, which calls MPI.COMM_SELF.Spawn on `python -m mpi4py.futures.server`
    # (mpi4py/futures/_lib.py). Open MPI's singleton forks its own runtime daemon (`orted`) to run
    # the spawn, so the ranks, which hold the GPU memory, are the daemon's children, not trtllm-serve's.
    procs = (
        Proc("serve", argv=("trtllm-serve", "m", "--tp_size", "2", "--port", "8000")),
        Proc("orted", parent="serve", argv=("orted", "--hnp", "--set-sid", "--report-uri", "11")),
        *(Proc(f"rank{r}", None, "orted", {r: 7_000}, argv=("-m", "mpi4py.futures.server")) for r in range(2)),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    (inst,) = doc["instances"]
    assert inst["root_pid"] == tree.pid["serve"] and inst["api_pid"] == tree.pid["serve"]
    assert inst["engine"] == "tensorrt-llm" and inst["tp_size"] == 2 and inst["name"] == "TensorRT-LLM m"
    assert sorted(inst["pids"]) == sorted(tree.pid[f"rank{r}"] for r in range(2))
    assert inst["per_gpu_mib"] == {"0": 7_000, "1": 7_000}
    assert {m["role"] for m in inst["members"]} == {"worker"}


def test_what_cannot_be_told_stays_alone_and_says_so(tmp_path):
    # A training script and a vLLM worker whose engine is not above it: neither is guessed into a group.
    procs = (
        Proc("shell", argv=("bash-like",)),
        Proc("train", None, "shell", {0: 3_000}, argv=("train.py",)),
        Proc("orphan", "VLLM::Worker_TP1", "shell", {1: 2_000}),
        Proc("other", None, "shell", {1: 1_000}, argv=("train.py",)),
    )
    with proc_tree(*procs) as tree:
        doc = run_once_json(tree.scenario(tmp_path / "nvml.txt", 2))
    assert len(doc["instances"]) == 3
    assert "engine not recognised" in by_pid(doc, tree.pid["train"])["note"]
    assert "no vllm server or launcher found above it" in by_pid(doc, tree.pid["orphan"])["note"]
