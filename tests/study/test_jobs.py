"""The one job-matrix runner: reuse by key, failures recorded, saved after every job, pools."""

from dataclasses import dataclass
from pathlib import Path

from ptypinn.study.jobs import run_matrix
from ptypinn.study.records import FileRecord, JobRecord


class NoteRecord(JobRecord):
    name: str

    @property
    def label(self) -> str:
        return self.name

    def summary(self) -> str:
        return f"{self.name}: {self.status}"


@dataclass(frozen=True)
class NoteJob:
    """Writes ``<root>/<name>.txt`` holding ``text``; a name starting with ``bad`` fails."""

    name: str
    text: str
    root: Path

    @property
    def label(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        return f"{self.name}:{self.text}"

    @property
    def files_root(self) -> Path:
        return self.root


def write_note(job: NoteJob) -> NoteRecord:
    record = NoteRecord(name=job.name, key=job.key, status="failed")
    if job.name.startswith("bad"):
        return record.model_copy(update={"error": "ValueError: bad note"})
    path = job.root / f"{job.name}.txt"
    path.write_text(job.text)
    return record.model_copy(
        update={"status": "ok", "files": {"note": FileRecord.of(path, job.root)}}
    )


def plan(root, **texts):
    return [NoteJob(name, text, root) for name, text in texts.items()]


def test_jobs_run_once_failures_are_recorded_and_every_finished_job_is_saved(tmp_path):
    saved = []
    jobs = plan(tmp_path, a="1", bad="2", c="3")
    first = run_matrix(jobs, write_note, {}, resume=False, save=saved.append)
    assert [(r.name, r.status, r.reused) for r in first] == [
        ("a", "ok", False),
        ("bad", "failed", False),
        ("c", "ok", False),
    ]
    assert [[r.name for r in records] for records in saved] == [
        [],
        ["a"],
        ["a", "bad"],
        ["a", "bad", "c"],
    ]
    earlier = {record.label: record for record in first}
    (tmp_path / "c.txt").write_text("changed by hand")
    again = run_matrix(plan(tmp_path, a="1", bad="2", c="3"), write_note, earlier, resume=True)
    assert [(r.name, r.reused) for r in again] == [("a", True), ("bad", False), ("c", False)]
    newer = plan(tmp_path, a="new", bad="2", c="3")
    other = run_matrix(newer, write_note, {r.label: r for r in again}, resume=True)
    assert [(r.name, r.reused) for r in other] == [("a", False), ("bad", False), ("c", True)]
    kept = run_matrix(newer, write_note, {r.label: r for r in other}, False, chosen={"bad"})
    assert [(r.name, r.reused) for r in kept] == [("a", True), ("bad", False), ("c", True)]


def test_a_process_pool_gives_the_records_a_single_process_gives(tmp_path):
    texts = {f"n{i}": str(i) for i in range(5)}
    (tmp_path / "one").mkdir()
    (tmp_path / "pool").mkdir()
    serial = run_matrix(plan(tmp_path / "one", **texts), write_note, {}, False)
    pooled = run_matrix(plan(tmp_path / "pool", **texts), write_note, {}, False, workers=2)
    assert [r.model_dump(exclude={"wall_time_s"}) for r in pooled] == [
        r.model_dump(exclude={"wall_time_s"}) for r in serial
    ]
