"""One job-matrix runner for the phases that run one job per cell (training E, iterative F).

A phase plans every job its design enumerates (:class:`Job`: a label, a content key and the
folder its record's files are relative to) and hands them to :func:`run_matrix` with the labels
its filters chose, a function that runs one job, and the records of an earlier manifest:

* a job's earlier record is kept (marked ``reused``) when it finished, has the job's key and its
  files still have their recorded bytes, for every job the filters left out and, with
  ``resume``, for the chosen ones too; the others chosen run;
* a job that fails is recorded by ``run_one`` (never raised) and the matrix goes on;
* after every finished job the records, in plan order, are handed to ``save`` (the phase
  rewrites its manifest, atomically), so an interrupted run keeps what it finished.

Jobs run one at a time, or ``workers`` at once in a pool of fresh processes
(:func:`process_pool`: spawned, so ``run_one`` and the jobs must be picklable), or on any given
``concurrent.futures`` executor.
A job's result never depends on where it ran.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Protocol, TypeVar

from ptypinn.io.progress import progress_bar
from ptypinn.study.records import JobRecord


def content_key(science: Mapping[str, object]) -> str:
    """A job's key: SHA-256 of what decides its result (``science``, JSON values), as sorted
    JSON, so equal science gives equal keys whatever the order of its fields."""
    return hashlib.sha256(json.dumps(science, sort_keys=True).encode()).hexdigest()


class Job(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def files_root(self) -> Path: ...


J = TypeVar("J", bound=Job)
R = TypeVar("R", bound=JobRecord)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh processes, spawned so that no torch state is shared with a
    fork; what runs there must be picklable."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def still_valid(job: Job, record: JobRecord | None) -> bool:
    """Whether an earlier record still describes ``job``: finished, same key, intact files."""
    return (
        record is not None
        and record.status == "ok"
        and bool(record.key)
        and record.key == job.key
        and all(file.intact(job.files_root) for file in record.files.values())
    )


def run_matrix(
    plan: Sequence[J],
    run_one: Callable[[J], R],
    records: Mapping[str, R],
    resume: bool,
    *,
    chosen: Collection[str] | None = None,
    save: Callable[[list[R]], None] = lambda records: None,
    workers: int = 1,
    executor: Executor | None = None,
    description: str = "jobs",
) -> list[R]:
    """Run the ``chosen`` jobs of ``plan`` (default: all) that no earlier record (``records``, by
    label) still describes; returns the records of the plan's jobs that have one, in plan order."""
    selected = {job.label for job in plan} if chosen is None else set(chosen)
    done: dict[str, R] = {
        job.label: records[job.label].model_copy(update={"reused": True})
        for job in plan
        if (job.label not in selected or resume) and still_valid(job, records.get(job.label))
    }
    pending = [job for job in plan if job.label in selected and job.label not in done]

    def finished(job: J, record: R) -> None:
        done[job.label] = record
        save([done[j.label] for j in plan if j.label in done])

    save([done[j.label] for j in plan if j.label in done])
    with progress_bar(description, len(pending)) as advance:
        if executor is None and min(workers, len(pending)) <= 1:
            for job in pending:
                finished(job, run_one(job))
                advance(1)
        else:
            pool = executor or process_pool(min(workers, len(pending)))
            try:
                futures: dict[Future[R], J] = {pool.submit(run_one, job): job for job in pending}
                for future in as_completed(futures):
                    finished(futures[future], future.result())
                    advance(1)
            finally:
                if executor is None:
                    pool.shutdown()
    return [done[job.label] for job in plan if job.label in done]
