"""``vramtop fit`` with vLLM's multimodal arguments and parallel suggestions, run as a user runs
it (a child process), on paper (``--on``) and on a node the stand-in NVML driver serves.

What should move follows vLLM's source: ``profile_run`` (vllm/v1/worker/gpu_model_runner.py)
encodes dummy items unless ``skip_mm_profiling``, as many as ``MultiModalBudget.get_max_items``
(vllm/v1/worker/utils.py) fits, none for a limit of 0; ``MultiModalConfig.get_limit_per_prompt``
(vllm/config/multimodal.py) gives 999 items of a modality left unlimited; ``ModelConfig``
(vllm/config/model.py) builds a multimodal config only for a multimodal architecture (a text-only
model's multimodal arguments are ignored) and falls back from ``--mm-encoder-tp-mode data`` to
"weights" where the model does not set ``supports_encoder_tp_data`` (qwen2_5_vl.py sets it,
gemma3_mm.py does not). Every launch line is given back to ``vramtop fit`` as it stands and
must be judged the same: the line is the candidate.
"""

import json
import shlex
import subprocess
import sys

import pytest

import fakenvml
from test_multimodal_profile import QWEN25_VL_7B

BATCH = ["--max-num-batched-tokens", "16384", "--max-model-len", "8192"]  # 64 Gemma 3 images a profile run


def fit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vramtop", "fit", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def fit_json(*args, env=None):
    done = fit(*args, "--json", env=env)
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def flags_of(launch):
    """The vLLM flags of a launch line: after ``vllm serve MODEL``, or a Ray Serve LLM config's
    engine_kwargs as flags with its replicas."""
    if launch["serve_config"] is not None:
        config = launch["serve_config"]
        out = []
        for name, value in config["engine_kwargs"].items():
            flag = "--" + name.replace("_", "-")
            out += [flag] if value is True else [flag, json.dumps(value) if isinstance(value, dict) else str(value)]
        return out + ["--replicas", str(config["deployment_config"]["autoscaling_config"]["max_replicas"])]
    assert launch["argv"][:2] == ["vllm", "serve"]
    return launch["argv"][3:]


def assert_given_back_alike(data, model, where, env=None):
    """The launch line's own flags, given back, get the same verdict, numbers and line."""
    launch = data["launch"]
    if launch["serve_config"] is None:  # the text is the env and argv a shell reads back
        env_words = [f"{k}={v}" for k, v in launch["env"].items()]
        assert shlex.split(launch["text"]) == env_words + launch["argv"]
    again = fit_json(model, *flags_of(launch), *where, env=env)
    assert again["verdict"] == launch["verdict"]
    assert {k: again["launch"][k] for k in ("verdict", "env", "argv")} == \
        {k: launch[k] for k in ("verdict", "env", "argv")}
    return again


@pytest.fixture
def a10_node(tmp_path):
    """Two empty NVIDIA A10s (22,515 MiB as CUDA counts them) on the stand-in driver."""
    scenario = fakenvml.Scenario(tmp_path / "nvml-scenario.txt")
    for _ in range(2):
        scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=0)
    scenario.write()
    return scenario.env()


NODES = {"paper": (["--on", "2x24GiB"], False), "stand-in NVML": ([], True)}


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("model", ["medgemma-4b", "gemma-3-27b"])
def test_leaving_the_encoder_out_of_the_profile_run_frees_its_peak_for_the_kv_cache(node, model, a10_node):
    where, nvml = NODES[node]
    env = a10_node if nvml else None
    base = [model, "--tp", "2", *BATCH, *where]
    default = fit_json(*base, env=env)
    skipped = fit_json(*base, "--skip-mm-profiling", env=env)
    no_images = fit_json(*base, "--limit-mm-per-prompt", '{"image": 0}', env=env)
    act = lambda d: d["ranks"][0]["activation_gib"]  # noqa: E731
    assert act(skipped) < act(default) and skipped["kv_cache_gib"] > default["kv_cache_gib"]
    assert skipped["weights_gib"] == default["weights_gib"]  # the tower is loaded all the same
    # no images a prompt: no dummy image to encode, the same as skipping the encoder's profile
    assert (act(no_images), no_images["kv_cache_gib"]) == (act(skipped), skipped["kv_cache_gib"])
    assert "--skip-mm-profiling" in skipped["launch"]["argv"]
    assert no_images["launch"]["argv"][-2:] == ["--limit-mm-per-prompt", '{"image":0}']
    assert any(r.startswith("--skip-mm-profiling: the profile run leaves the vision encoder out")
               for r in skipped["reasons"])
    assert any(r.startswith("profile run: 64 dummy image(s) of 256 embeddings") for r in default["reasons"])
    assert (skipped["multimodal"]["skip_mm_profiling"], no_images["multimodal"]["image_limit"],
            default["multimodal"]["image_limit"]) == (True, 0, 999)
    for data in (default, skipped, no_images):
        assert_given_back_alike(data, model, where, env)


def test_a_lower_image_limit_encodes_fewer_dummy_images():
    """With 8 sequences a batch, get_max_items takes 8 × the limit images (at most the 64 the
    encoder budget holds), so a limit of 1 profiles 8 images, 4 profile 32."""
    base = ["medgemma-4b", *BATCH, "--max-num-seqs", "8", "--on", "1x24GiB"]
    runs = {limit: fit_json(*base, *(["--limit-mm-per-prompt", f'{{"image": {limit}}}'] if limit else []))
            for limit in (1, 4, None)}
    act = {k: d["ranks"][0]["activation_gib"] for k, d in runs.items()}
    assert act[1] < act[4] < act[None]
    assert runs[1]["kv_cache_tokens"] > runs[4]["kv_cache_tokens"] > runs[None]["kv_cache_tokens"]
    assert any("8 dummy image(s)" in r for r in runs[1]["reasons"])
    assert any("32 dummy image(s)" in r for r in runs[4]["reasons"])
    older = fit_json(*base, "--limit-mm-per-prompt", "image=4")  # the key=value form of older releases
    assert older["kv_cache_tokens"] == runs[4]["kv_cache_tokens"]
    assert older["launch"]["argv"][-2:] == ["--limit-mm-per-prompt", '{"image":4}']
    for data in runs.values():
        assert_given_back_alike(data, "medgemma-4b", ["--on", "1x24GiB"])


@pytest.mark.parametrize("node", NODES)
def test_encoder_data_parallel_falls_back_to_weights_for_gemma3_as_vllm_does(node, a10_node):
    where, nvml = NODES[node]
    env = a10_node if nvml else None
    base = ["gemma-3-27b", "--tp", "2", *BATCH, *where]
    sharded = fit_json(*base, env=env)
    data = fit_json(*base, "--mm-encoder-tp-mode", "data", env=env)
    assert data["ranks"] == sharded["ranks"]
    assert data["multimodal"]["mm_encoder_tp_mode"] == "weights"
    assert "vLLM would say: This model does not support `--mm-encoder-tp-mode data`. Falling back to " \
           "`--mm-encoder-tp-mode weights`." in data["reasons"]
    assert data["launch"]["argv"][-2:] == ["--mm-encoder-tp-mode", "data"]  # as asked; vLLM falls back itself
    assert_given_back_alike(data, "gemma-3-27b", where, env)


def test_encoder_data_parallel_puts_the_whole_qwen25_vl_tower_on_each_rank(tmp_path):
    model = tmp_path / "Qwen2.5-VL-7B-Instruct"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    where = ["--on", "2x48GiB", "--max-model-len", "32768"]
    sharded = fit_json(str(model), "--tp", "2", *where)
    data = fit_json(str(model), "--tp", "2", "--mm-encoder-tp-mode", "data", *where)
    assert data["multimodal"]["mm_encoder_tp_mode"] == "data"
    assert data["weights_gib"] > sharded["weights_gib"]  # the other half of the tower on each rank
    assert data["ranks"][0]["activation_gib"] >= sharded["ranks"][0]["activation_gib"]
    assert data["kv_cache_tokens"] < sharded["kv_cache_tokens"]
    assert any(r.startswith("--mm-encoder-tp-mode data: every TP rank holds the whole encoder")
               for r in data["reasons"])
    assert data["launch"]["argv"][2] == str(model)
    assert_given_back_alike(data, str(model), where)


def test_a_text_only_model_ignores_the_multimodal_flags_as_vllm_does():
    where = ["--on", "1x24GiB", "--max-model-len", "16384"]
    plain = fit_json("Qwen/Qwen2.5-7B-Instruct", *where)
    flagged_args = ["Qwen/Qwen2.5-7B-Instruct", *where, "--limit-mm-per-prompt", '{"image": 2}',
                    "--skip-mm-profiling", "--mm-encoder-tp-mode", "data"]
    flagged = fit_json(*flagged_args)
    assert flagged["ranks"] == plain["ranks"] and flagged["verdict"] == plain["verdict"]
    assert "the model has no vision or audio encoder: vLLM ignores --limit-mm-per-prompt, " \
           "--skip-mm-profiling and --mm-encoder-tp-mode for it" in flagged["reasons"]
    assert flagged["launch"]["argv"] == plain["launch"]["argv"]  # left out: releases up to 0.9 refused them
    command = fit(*flagged_args, "--command")
    assert command.returncode == 0 and "--limit-mm-per-prompt" not in command.stdout
    assert "# the multimodal flags are left out: the model has no vision or audio encoder" in command.stderr


@pytest.mark.parametrize("args, flag", [
    (["--limit-mm-per-prompt", '{"image": -1}'], "--limit-mm-per-prompt: image must be a whole number ≥ 0"),
    (["--limit-mm-per-prompt", '{"image": {"count": 2, "width": 512}}'],
     "--limit-mm-per-prompt: image: only the count is modelled, not dummy sizes (width)"),
    (["--limit-mm-per-prompt", '{"image": 2'], "--limit-mm-per-prompt: must be JSON like"),
    (["--mm-encoder-tp-mode", "pipeline"], "argument --mm-encoder-tp-mode: invalid choice: 'pipeline'"),
    (["--engine", "ollama", "--skip-mm-profiling"],
     "--skip-mm-profiling: skip_mm_profiling is vLLM's; Ollama has no multimodal profile run"),
])
def test_a_bad_multimodal_flag_is_one_line_and_status_3(args, flag):
    done = fit("medgemma-4b", "--on", "1x24GiB", *args)
    assert done.returncode == 3 and done.stdout == ""
    assert flag in done.stderr.splitlines()[-1]


@pytest.mark.parametrize("model, where, argv_tail", [
    # three GPUs and 64 heads: no TP size, but three pipeline stages
    ("llama-3.1-70b", ["--on", "3x64GiB", "--max-model-len", "8192"], ["--pipeline-parallel-size", "3"]),
    # two replicas each holding all 128 experts do not fit; one engine of two DP ranks splitting them does
    ("Qwen/Qwen3-30B-A3B", ["--replicas", "2", "--on", "2x48GiB", "--max-model-len", "8192"],
     ["--data-parallel-size", "2", "--enable-expert-parallel"]),
])
def test_each_suggestion_carries_the_line_it_was_judged_as(model, where, argv_tail):
    data = fit_json(model, *where)
    assert data["verdict"] == "red" and data["suggestions"]
    parallel = [s for s in data["suggestions"] if s["launch"]["argv"][-len(argv_tail):] == argv_tail]
    assert len(parallel) == 1 and parallel[0]["verdict"] == "green"
    on = where[where.index("--on"):where.index("--on") + 2]
    for suggestion in data["suggestions"]:
        launch = suggestion["launch"]
        assert launch["verdict"] == suggestion["verdict"]
        if "awq" in launch["argv"]:  # the model's own repository is not an AWQ checkpoint
            assert any(n.startswith("--quantization awq needs the model quantized with AWQ: put such a "
                                    "checkpoint of ") for n in launch["notes"])
        again = fit_json(model, *flags_of(launch), *on)  # the line alone, as vLLM would be given it
        assert again["verdict"] == suggestion["verdict"], (suggestion["text"], again["headline"])
