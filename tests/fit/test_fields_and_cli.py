"""Typed text to Candidate with field-level errors; the `vramtop fit` command line."""

import json
import subprocess
import sys

import pytest

from vramtop.cli import main as vramtop_main
from vramtop.fit.fields import candidate_from_fields, list_models
from vramtop.fit.placement import paper_node
from vramtop.fit.verdict import INVALID, evaluate


def test_fields_parse_into_a_candidate():
    c, errors = candidate_from_fields({"model": "medgemma-4b", "tensor_parallel_size": "2",
                                       "gpu_memory_utilization": "85%", "max_model_len": "8k",
                                       "gpus": "0, 1", "stopped": "ray:4000"})
    assert errors == {}
    assert (c.tensor_parallel_size, c.gpu_memory_utilization, c.max_model_len, c.gpus, c.stopped) == \
        (2, 0.85, 8192, (0, 1), ("ray:4000",))
    assert c.model.name == "google/medgemma-4b-it"


def test_each_bad_field_gets_its_own_message():
    c, errors = candidate_from_fields({"model": "medgema", "gpu_memory_utilization": "1.5",
                                       "max_model_len": "lots", "gpus": "zero", "engine": "sglang"})
    assert c is None
    assert set(errors) == {"model", "gpu_memory_utilization", "max_model_len", "gpus", "engine"}
    assert errors["gpu_memory_utilization"] == "gpu_memory_utilization must be in (0, 1], got 1.5"
    assert errors["model"].startswith("unknown model 'medgema'; closest:")


def test_blank_and_auto_mean_default():
    c, errors = candidate_from_fields({"model": "qwen3-8b", "gpu_memory_utilization": "",
                                       "max_model_len": "auto", "gpus": "auto"})
    assert not errors and c.gpu_memory_utilization is None and c.max_model_len is None and c.gpus is None


def test_engine_refusals_come_back_as_field_errors_not_exceptions():
    node = paper_node("2x24GiB")
    c, _ = candidate_from_fields({"model": "llama-3.1-8b", "tensor_parallel_size": "3", "gpus": "0,5"})
    r = evaluate(c, node)
    assert r.verdict == INVALID
    assert r.errors["tensor_parallel_size"] == ("Total number of attention heads (32) must be divisible "
                                                 "by tensor parallel size (3).")
    c2, _ = candidate_from_fields({"model": "llama-3.1-8b", "gpus": "0,5"})
    assert evaluate(c2, node).errors["gpus"] == "no GPU 5 on 2x24576 MiB on paper (it has 0, 1)"
    c3, _ = candidate_from_fields({"model": "llama-3.1-8b", "max_model_len": "200000"})
    assert "greater than the derived max_model_len" in evaluate(c3, node).errors["max_model_len"]


def test_list_models_offers_the_catalog():
    names = [m.name for m in list_models()]
    assert "google/medgemma-27b-it" in names and len(names) >= 28


def run_fit(argv, capsys):
    code = vramtop_main(["fit", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_exit_status_and_text(capsys):
    code, out, _ = run_fit(["medgemma-4b-it", "--tp", "2", "--util", "0.85", "--max-model-len", "8192", "--demo"], capsys)
    assert code == 2
    first = out.splitlines()[0]
    assert first.startswith("✗ RED  vLLM would not start on GPU")
    assert "vLLM would say: Free memory on device" in out
    assert "stop medgemma/VLLMDeployment" in out
    code, out, _ = run_fit(["medgemma-4b-it", "--tp", "2", "--util", "0.85", "--max-model-len", "8192",
                            "--demo", "--assume-stopped", "ray:4000"], capsys)
    assert code == 1 and out.startswith("! YELLOW  only if medgemma/VLLMDeployment is stopped")
    code, out, _ = run_fit(["Qwen/Qwen2.5-7B-Instruct", "--on", "1x24GiB", "--max-model-len", "16384"], capsys)
    assert code == 0 and out.startswith("✓ GREEN  fits")


@pytest.mark.parametrize("argv, says", [
    (["medgemma-4b-it", "--demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["medgemma-4b-it", "--tp"], "argument --tp: expected one argument"),
])
def test_a_misused_command_line_is_bad_input_not_red(argv, says, capsys):
    with pytest.raises(SystemExit) as ended:
        vramtop_main(["fit", *argv])
    assert ended.value.code == 3  # 2 means RED
    assert capsys.readouterr().err.splitlines()[-1] == f"vramtop fit: error: {says}"


def test_json_names_the_figures_as_vllm_logs_them(capsys):
    code, out, _ = run_fit(["qwen3-14b", "--on", "1x80GiB", "--max-model-len", "32768", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "green"
    for key in ("weights_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency",
                "max_model_len_that_fits", "per_gpu", "reasons", "suggestions"):
        assert key in data
    assert data["per_gpu"][0]["needed_mib"] < data["per_gpu"][0]["free_mib"]
    assert data["kv_cache_tokens"] % 16 == 0


@pytest.mark.parametrize("argv, message", [
    (["medgemma-27b", "--util", "1.5", "--demo"], "--util: gpu_memory_utilization must be in (0, 1], got 1.5"),
    (["llama3.1:70b", "--tp", "3", "--on", "4x23028MiB"],
     "--tp: Total number of attention heads (64) must be divisible by tensor parallel size (3)."),
    (["nosuchmodel-9b", "--demo"], "unknown model 'nosuchmodel-9b'"),
    (["qwen3-8b", "--on", "lots"], "--on must look like 1x24GiB or 4x23028MiB"),
    (["qwen3-8b", "--demo", "--assume-stopped", "ray:1"], "--assume-stopped: no running instance 'ray:1'"),
    ([], "give a MODEL"),
])
def test_bad_input_is_one_line_and_status_3(capsys, argv, message):
    code, out, err = run_fit(argv, capsys)
    assert code == 3 and out == ""
    assert message in err and err.count("\n") == 1


def test_params_guess_and_list(capsys):
    code, out, _ = run_fit(["--params", "27B", "--quant", "q8_0", "--engine", "ollama", "--on", "1x48GiB"], capsys)
    assert code in (0, 1, 2) and "27B guess" in out
    code, out, _ = run_fit(["--list"], capsys)
    assert code == 0 and "google/medgemma-27b-it" in out


def test_help_reads_like_a_man_page():
    out = subprocess.run([sys.executable, "-m", "vramtop.cli.fit", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    for part in ("exit status:", "examples:", "TOTAL memory", "--assume-stopped", "--on NxSIZE", "GREEN", "RED"):
        assert part in out
