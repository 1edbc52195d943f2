from ptypinn.io import progress
from ptypinn.io.progress import Ticker, progress_bar


def test_redirected_output_gets_plain_lines_at_the_interval(capsys):
    ticker = Ticker("training jobs", 3, interval=0.0)
    for done in (1, 2, 3):
        ticker.update(done, detail=f"loss {done}")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "training jobs: 1/3",
        "training jobs: 2/3",
        "training jobs: 3/3",
    ]
    assert lines[-1].endswith("s, loss 3)")


def test_quick_work_prints_nothing_and_slow_work_closes_with_a_line(capsys, monkeypatch):
    with progress_bar("far field", 4) as advance:  # stdout is captured here, not a terminal
        advance(4)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.0)
    with progress_bar("far field", 4) as advance:
        advance(2)
        advance(2)
    assert capsys.readouterr().out.splitlines()[-1].startswith("far field: 4/4 (")
