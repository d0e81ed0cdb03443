"""Batch inference under Lightning's predict loop: one ``layerseg infer`` run shared out between
several processes, GPUs or machines (``--devices N [--num-nodes M]``).

How it runs:

- every process plans the run as a single process would (input files, exam keys, what
  ``--resume`` skips); the plan of rank 0 is then broadcast (`ExamPredictor.setup`), so every
  process works from one list even where the machines' file listings differ. Its
  de-identification salt goes with it (over the process group, never to a file): a machine
  whose salt differs takes rank 0's, so exam and subject keys are the same whichever process
  read the exam. The salt then travels over the job's own process group (gloo or NCCL, in
  clear) and sits in the other processes' environment: on a shared cluster give every
  machine the same secret ``LAYERSEG_SALT`` instead, which also keeps keys comparable
  between runs;
- the exams still to do are the predict dataset, one item per exam file, shared out between
  the processes round-robin by rank (`ExamPredictor.predict_dataloader`): no exam is done
  twice, none is lost, and a process may get none (fewer exams than processes, or nothing
  left after ``--resume``). Lightning's own ``UnrepeatedDistributedSamplerWrapper`` is not
  used: it asserts that every process gets at least one item;
- each process segments and scores its exams on its own device (`ExamPredictor.predict_step`,
  through `layerseg.infer.infer_frames`) and writes each one as it ends (`ExamWriter`, a
  ``BasePredictionWriter``): one writer per process, each exam folder written by exactly one,
  atomically, ``done.json`` last, as in a single-process run;
- after the loop the processes' records are gathered (``all_gather_object``, every process,
  also one that got no exam and so skipped the loop) and rank 0 alone writes
  the run-level files (scores table, summary, run log) in file order. Apart from the run log's
  times and which process did which exam (``[rank K]`` in its lines) and the ``run`` block of
  ``summary.json``, the outputs are byte-identical to a single-process run.

Launching: on one machine, ``--devices N`` starts the other N - 1 processes itself (Lightning's
DDP launcher re-runs the same command). Across machines, start the same command on each, under
torchrun or SLURM (Lightning reads the cluster environment), with the output folder on a file
system every machine sees. Only the exit status of rank 0 (the process the user started) tells
whether anything failed; the others exit 0 once their exams are written, so that Lightning's
launcher does not take a failed exam for a crashed process.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

__all__ = ["check_distributed", "predict_exams"]


def check_distributed(devices: int | str | None, num_nodes: int, device: str,
                      workers: int = 1) -> dict:
    """Check the options of a distributed run before any work.

    Parameters
    ----------
    devices : int or None
        Processes per machine (one per GPU with ``device`` ``cuda``); None: 1.
    num_nodes : int
        Machines.
    device : {'cpu', 'auto', 'cuda'}
        What each process runs on; ``auto``: the GPUs when torch sees them. A single device
        (``cuda:1``) is refused: Lightning gives each process its own.
    workers : int
        Reader threads per process (`layerseg.infer.infer_frames`).

    Returns
    -------
    dict
        ``devices``, ``num_nodes``, ``accelerator`` (``cpu``/``gpu``), ``workers``, ``label``
        (for the run log).

    Raises
    ------
    ConfigError
        A count that is not a whole number 1 or more, a single CUDA device, CUDA asked for
        where torch sees none (or fewer GPUs than `devices`), or several nodes without a
        launcher (torchrun, SLURM...) to start them.
    """
    devices = 1 if devices is None else devices
    for name, v in (("devices", devices), ("num_nodes", num_nodes)):
        if isinstance(v, bool) or int(v) != v or int(v) < 1:
            raise ConfigError(f"{name} must be a whole number, 1 or more, not {v!r}")
    devices, num_nodes = int(devices), int(num_nodes)
    dev = str(device).strip().lower()
    if dev not in ("cpu", "auto", "cuda"):
        raise ConfigError(f"device {device!r} with devices={devices}: give cpu, cuda or auto; "
                          "Lightning gives each process its own device (to use one chosen GPU, "
                          "leave out devices and num_nodes)")
    import torch
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if dev == "auto":
        dev = "cuda" if n_gpu else "cpu"
    if dev == "cuda" and n_gpu < devices:
        raise ConfigError(f"device cuda with devices={devices}: torch sees {n_gpu} CUDA "
                          "device(s) on this machine")
    if num_nodes > 1 and not _launched_on_a_cluster():
        raise ConfigError(f"num_nodes={num_nodes}: start the command on every machine under "
                          "torchrun or SLURM (srun), or set MASTER_ADDR, MASTER_PORT, NODE_RANK "
                          "and WORLD_SIZE yourself; started alone it would wait for machines "
                          "that never join")
    accelerator = "gpu" if dev == "cuda" else "cpu"
    world = devices * num_nodes
    label = (f"{world} process(es) ({devices} {accelerator.upper()} device(s) x {num_nodes} "
             "node(s)) under Lightning's predict loop")
    return {"devices": devices, "num_nodes": num_nodes, "accelerator": accelerator,
            "workers": int(workers), "label": label}


def _launched_on_a_cluster() -> bool:
    """A launcher Lightning reads is present: torchrun, SLURM, LSF, MPI, or the variables of a
    manual launch (Lightning's own environment)."""
    import os
    env = os.environ
    return any(env.get(k) for k in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "LSB_JOBID",
                                    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")) or \
        all(env.get(k) for k in ("MASTER_ADDR", "NODE_RANK"))


def _first(items: list):
    """Collate for one exam per batch: the dataset index itself."""
    return items[0]


def _lightning_classes():
    """The LightningModule and the writer callback (defined on first use: Lightning and torch
    are imported only by a distributed run)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import BasePredictionWriter
    from torch.utils.data import DataLoader

    from .pipeline import group_exams, infer_frames

    class ExamPredictor(pl.LightningModule):
        """Predicts one exam per step: reads, segments and scores its frames
        (`infer_frames`) on this process's device."""

        def __init__(self, plan: dict, model: str, region: str | None,
                     spacing: tuple[float, float] | None, batch_size: int, workers: int):
            super().__init__()
            self.plan, self.model_name, self.region = plan, model, region
            self.spacing, self.frames_batch, self.workers = spacing, batch_size, workers
            # fewer exams than processes (or none left after --resume): a process may get none
            self.allow_zero_length_dataloader_with_multiple_devices = True

        def setup(self, stage: str) -> None:
            import os

            from ..io._salt import SALT_ENV, resolve_salt
            mine = dict(self.plan, salt=resolve_salt())
            shared = self.trainer.strategy.broadcast(mine, src=0)
            salt = shared["salt"]
            self.plan = {k: v for k, v in shared.items() if k != "salt"}
            if salt != mine["salt"]:   # subject keys too must be rank 0's (as its exam keys)
                os.environ[SALT_ENV] = salt

        def predict_dataloader(self):
            # this process's share: every world-th exam from its rank on (none when there are
            # fewer exams than processes; Lightning's own unrepeated sampler asserts that each
            # process gets at least one, so it is not used)
            mine = list(range(len(self.plan["todo"])))[self.global_rank::self.trainer.world_size]
            return DataLoader(mine, batch_size=1, shuffle=False, collate_fn=_first)

        def _device_name(self) -> str:
            d = self.device
            return "cpu" if d.type == "cpu" else f"cuda:{d.index or 0}"

        def predict_step(self, batch, batch_idx: int):
            path = Path(self.plan["todo"][int(batch)])
            key = self.plan["keys"][self.plan["files"].index(str(path))]
            frames = infer_frames([path], model=self.model_name, region=self.region,
                                  spacing=self.spacing, keys={path: key}, progress=None,
                                  workers=self.workers, batch_size=self.frames_batch,
                                  device=self._device_name())
            return next(group_exams(frames))

    class ExamWriter(BasePredictionWriter):
        """Writes each exam this process predicted (`layerseg.infer.run.write_exams`) and keeps
        its records (gathered from every process after the loop, `_gather`)."""

        def __init__(self, out: Path, model: str, region: str | None, keep_ids: bool,
                     echo: Callable[[str], None]):
            super().__init__(write_interval="batch")
            self.out, self.model, self.region = out, model, region
            self.keep_ids, self.echo = keep_ids, echo
            self.entries: list[dict] = []

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch,
                               batch_idx, dataloader_idx):
            from .run import write_exams
            for e in write_exams([prediction], self.out, model=self.model, region=self.region,
                                 keep_ids=self.keep_ids, echo=self.echo):
                e["rank"] = trainer.global_rank
                e["log"] = [f"{line} [rank {trainer.global_rank}]" for line in e["log"]]
                self.entries.append(e)

    return ExamPredictor, ExamWriter


def _gather(entries: list[dict]) -> list[dict]:
    """Every process's `entries`, concatenated (all_gather_object over the process group;
    this process's alone without one). Called by every process after the predict loop, not in
    a loop hook: a process that got no exam skips the loop and its hooks altogether (Lightning
    skips an empty loop), and a collective that one process never joins would hang the
    others."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return list(entries)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, entries)
    return [e for part in parts for e in part]


def predict_exams(plan: dict, out: Path, *, model: str, region: str | None,
                  spacing: tuple[float, float] | None, keep_ids: bool, progress: bool,
                  batch_size: int, device: str, echo: Callable[[str], None], devices: int,
                  num_nodes: int, accelerator: str, workers: int, label: str
                  ) -> tuple[list[dict], dict, bool, dict]:
    """Do the exams of `plan` under Lightning's predict loop (see the module docstring).

    Parameters
    ----------
    plan : dict
        ``files`` (input paths, str), ``keys`` (their exam keys), ``todo`` (paths still to
        do), ``status`` (resumed exams' records), ``log`` (run-log lines so far); this process's
        own, replaced by rank 0's.
    out : Path
        The output folder.
    model, region, spacing, keep_ids, batch_size : as `layerseg.infer.run_infer`
    progress : bool
        Lightning's progress bar (exams).
    device : str
        Unused beyond `check_distributed` (kept for the signature of `run_infer`).
    echo : callable(str)
        The terminal (failures as they happen).
    devices, num_nodes, accelerator, workers, label : from `check_distributed`

    Returns
    -------
    entries : list of dict
        Every process's exam records (`layerseg.infer.run.exam_entry`, with ``rank``), in
        file order.
    plan : dict
        Rank 0's plan.
    is_zero : bool
        This process is rank 0 (it writes the run-level files).
    run_info : dict
        For the ``run`` block of ``summary.json``: ``processes``, ``num_nodes``,
        ``accelerator``, ``global_rank``, ``exams_by_rank``.
    """
    import lightning.pytorch as pl

    ExamPredictor, ExamWriter = _lightning_classes()
    module = ExamPredictor(plan, model, region, spacing, batch_size, workers)
    writer = ExamWriter(Path(out), model, region, keep_ids, echo)
    world = devices * num_nodes
    quiet = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*predict_dataloader.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*across ranks is zero.*")
            trainer = pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                                 strategy="ddp" if world > 1 else "auto", logger=False,
                                 enable_checkpointing=False, enable_model_summary=False,
                                 enable_progress_bar=bool(progress), inference_mode=True,
                                 callbacks=[writer], use_distributed_sampler=False)
            t0 = time.time()
            trainer.predict(module, return_predictions=False)
            gathered = _gather(writer.entries)
    finally:
        for q, lv in zip(quiet, levels):
            q.setLevel(lv)
    plan = module.plan
    order = {p: i for i, p in enumerate(plan["files"])}
    files_by_key = dict(zip(plan["keys"], plan["files"]))
    entries = sorted(gathered, key=lambda e: order[files_by_key[e["exam"]]])
    by_rank: dict[int, int] = {}
    for e in entries:
        by_rank[e["rank"]] = by_rank.get(e["rank"], 0) + 1
    run_info = {"processes": world, "num_nodes": num_nodes, "accelerator": accelerator,
                "global_rank": trainer.global_rank, "predict_seconds": round(time.time() - t0, 3),
                "exams_by_rank": {str(k): v for k, v in sorted(by_rank.items())}}
    return entries, plan, trainer.is_global_zero, run_info
