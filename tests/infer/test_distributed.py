"""``--devices N [--num-nodes M]``: the same run under Lightning's predict loop. The exams are
shared out between the processes, each done and written by exactly one (none repeated, none
lost, bad files included), rank 0 writes the run-level files, and every output is
byte-identical to a single-process run (the run log's times and ranks and the summary's ``run``
block aside). Two CPU processes on one machine (Lightning's DDP launcher, gloo), and two
"machines" started by torchrun on this one, each with its own salt, are run for real."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from layerseg.errors import ConfigError
from layerseg.infer import exam_key, find_inputs
from layerseg.infer.distributed import check_distributed

pytest.importorskip("lightning")


def _with_bad_files(inputs: Path) -> list[Path]:
    """Two bad files beside the three good exams: five exams, shared unevenly by two ranks."""
    bad = inputs / "bad"
    bad.mkdir()
    data = (inputs / "exam_a.dcm").read_bytes()
    (bad / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (bad / "notes.dcm").write_text("this is a text file, not DICOM\n")
    return sorted(bad.iterdir())


def _env(**extra) -> dict:
    env = dict(os.environ, LAYERSEG_THREADS="1", PYTHONWARNINGS="ignore", **extra)
    env.pop("LAYERSEG_INFER_TEST_SLEEP_S", None)
    return env


def _log_exams(out: Path) -> dict[str, list[int]]:
    """``{exam key: [ranks that logged it]}`` from run.log's per-exam lines."""
    seen: dict[str, list[int]] = {}
    for line in (out / "run.log").read_text().splitlines():
        m = re.search(r"exam ([0-9a-f]{16}): (\d+/\d+ frame|FAILED).*\[rank (\d+)\]$", line)
        if m:
            seen.setdefault(m.group(1), []).append(int(m.group(3)))
    return seen


def test_one_process_under_lightning_matches_the_plain_run(inputs, tmp_path, kit):
    bad = _with_bad_files(inputs)
    ref, out = tmp_path / "plain", tmp_path / "lightning"
    assert kit.run_cli(inputs, "--out", ref, "--no-progress") == 1
    assert kit.run_cli(inputs, "--out", out, "--no-progress", "--devices", "1") == 1
    kit.assert_same_outputs(ref, out)
    run = kit.summary(out)["run"]
    assert run["processes"] == 1 and run["global_rank"] == 0
    assert run["exams_by_rank"] == {"0": kit.N_EXAMS + len(bad)}
    assert set(_log_exams(out)) == {exam_key(f) for f in find_inputs([inputs])}
    # resumed under Lightning: the done exams are skipped, the bad ones tried again
    assert kit.run_cli(inputs, "--out", out, "--no-progress", "--devices", "1",
                       "--resume") == 1
    s = kit.summary(out)
    assert s["run"]["exams_resumed"] == kit.N_EXAMS
    assert s["run"]["exams_processed"] == len(bad)
    kit.assert_same_outputs(ref, out)


def test_two_cpu_processes_share_the_exams_once_each(inputs, tmp_path, kit, monkeypatch):
    bad = _with_bad_files(inputs)
    ref, out = tmp_path / "plain", tmp_path / "ddp"
    # the plain run on the ranks' thread count: the OpenVINO graph's logits on one thread differ
    # from those on two in the last bits (another kernel), and the scores are written in full
    monkeypatch.setenv("LAYERSEG_THREADS", "1")
    assert kit.run_cli(inputs, "--out", ref, "--no-progress") == 1
    p = subprocess.run([kit.PY, "-m", "layerseg", "infer", str(inputs), "--out", str(out),
                        "--no-progress", "--devices", "2", "--device", "cpu"],
                       capture_output=True, text=True, env=_env(), timeout=600)
    assert p.returncode == 1, p.stderr[-3000:]      # rank 0's status: two files failed
    for f in bad:         # named on the terminal once as it fails (by the rank that read it)
        assert p.stderr.count(f"FAILED {f}") == 1, p.stderr[-3000:]
        assert p.stderr.count(f"  {f}: ") == 1      # and once in rank 0's closing list
    kit.assert_same_outputs(ref, out)
    seen = _log_exams(out)
    assert set(seen) == {exam_key(f) for f in find_inputs([inputs])}   # none lost
    assert all(len(r) == 1 for r in seen.values()), seen                # none repeated
    assert {r[0] for r in seen.values()} == {0, 1}                      # both ranks worked
    run = kit.summary(out)["run"]
    assert run["processes"] == 2 and run["global_rank"] == 0
    assert sorted(run["exams_by_rank"]) == ["0", "1"]
    assert sum(run["exams_by_rank"].values()) == kit.N_EXAMS + len(bad)


def test_more_processes_than_exams_and_nothing_left_to_do(inputs, tmp_path, kit):
    """One exam for two processes (rank 1 gets none and skips the loop), then a --resume with
    nothing left to do (both get none): both runs finish, nothing hangs, the outputs are the
    single exam's."""
    one = tmp_path / "one"
    one.mkdir()
    (one / "exam_a.dcm").write_bytes((inputs / "exam_a.dcm").read_bytes())
    out = tmp_path / "ddp1"
    cmd = [kit.PY, "-m", "layerseg", "infer", str(one), "--out", str(out), "--no-progress",
           "--devices", "2", "--device", "cpu"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    s = kit.summary(out)
    assert s["exams"] == {"total": 1, "done": 1, "failed": 0}
    assert s["run"]["exams_by_rank"] == {"0": 1}
    p = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=_env(),
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    s = kit.summary(out)
    assert s["run"]["exams_resumed"] == 1 and s["run"]["exams_by_rank"] == {}
    assert s["exams"]["done"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.name != "posix", reason="torchrun over loopback")
def test_two_nodes_under_torchrun_follow_rank_0s_plan(inputs, tmp_path, kit):
    """Two 'machines' (torchrun node ranks 0 and 1 on this one) with different salts: the
    exam keys are rank 0's on both, every exam is written once, the outputs are those of a
    single-process run made with rank 0's salt."""
    ref, out = tmp_path / "plain", tmp_path / "nodes"
    torchrun = [kit.PY, "-m", "torch.distributed.run"]
    port = _free_port()
    subprocess.run([kit.PY, "-m", "layerseg", "infer", str(inputs), "--out", str(ref),
                    "--no-progress"], env=_env(LAYERSEG_SALT="node-zero"), check=True,
                   capture_output=True, timeout=600)
    procs = [subprocess.Popen(
        [*torchrun, "--nnodes", "2", "--node-rank", str(n), "--nproc-per-node", "1",
         "--master-addr", "127.0.0.1", "--master-port", str(port),
         "-m", "layerseg", "infer", str(inputs), "--out", str(out), "--no-progress",
         "--devices", "1", "--num-nodes", "2", "--device", "cpu"],
        env=_env(LAYERSEG_SALT=f"node-{('zero', 'one')[n]}"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for n in (0, 1)]
    logs = [pr.communicate(timeout=600)[0] for pr in procs]
    assert procs[0].returncode == 0, logs[0][-3000:]
    kit.assert_same_outputs(ref, out)
    seen = _log_exams(out)
    assert len(seen) == kit.N_EXAMS and all(len(r) == 1 for r in seen.values())
    assert {r[0] for r in seen.values()} == {0, 1}
    assert kit.summary(out)["run"]["num_nodes"] == 2


@pytest.mark.parametrize("kwargs, words", [
    ({"devices": 0, "num_nodes": 1, "device": "cpu"}, "devices must be"),
    ({"devices": 2, "num_nodes": 0, "device": "cpu"}, "num_nodes must be"),
    ({"devices": 1.5, "num_nodes": 1, "device": "cpu"}, "whole number"),
    ({"devices": 2, "num_nodes": 1, "device": "cuda:1"}, "its own device"),
    ({"devices": 2, "num_nodes": 1, "device": "tpu"}, "give cpu, cuda or auto"),
])
def test_bad_distributed_options_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        check_distributed(**kwargs)


def test_several_nodes_need_a_launcher(monkeypatch):
    for k in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "LSB_JOBID", "OMPI_COMM_WORLD_SIZE",
              "PMI_SIZE", "MASTER_ADDR", "NODE_RANK"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="torchrun or SLURM"):
        check_distributed(1, 2, "cpu")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert check_distributed(1, 2, "cpu")["num_nodes"] == 2


def test_cuda_refused_where_torch_sees_too_few(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="sees 0 CUDA"):
        check_distributed(2, 1, "cuda")
    assert check_distributed(2, 1, "auto")["accelerator"] == "cpu"


def test_cli_refuses_bad_devices_before_any_work(inputs, tmp_path, kit, capsys):
    out = tmp_path / "out"
    assert kit.run_cli(inputs, "--out", out, "--devices", "0") == 2
    assert "devices must be" in capsys.readouterr().err
    assert not (out / "exams").exists() or not any((out / "exams").iterdir())
