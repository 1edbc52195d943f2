import csv
import json

import matplotlib.pyplot
import numpy as np
import pytest

from ptypinn.analysis import report


def fixture_rows():
    rows = []
    for dose in (1e3, 1e4):
        for method, base in (("pinn_gs2", 0.8), ("iterative", 0.7)):
            for metric in report.HEADLINE_METRICS:
                value = base + (0.1 if dose == 1e4 else 0.0)
                rows.append(
                    {
                        "dose": dose,
                        "view": "dense",
                        "method": method,
                        "component": "phase",
                        "metric": metric,
                        "value": value,
                        "reason": None,
                    }
                )
    rows.append(
        {
            "dose": 1e3,
            "view": "dense",
            "method": "pinn_gs2",
            "component": "amplitude",
            "metric": "psnr",
            "value": None,
            "reason": "identical images (infinite PSNR)",
        }
    )
    return rows


def test_tidy_tables_round_trip(tmp_path):
    rows = fixture_rows()
    csv_path, json_path = report.write_tidy(rows, tmp_path)
    with open(csv_path, newline="") as fh:
        read = list(csv.DictReader(fh))
    assert len(read) == len(rows) and tuple(read[0]) == report.TIDY_FIELDS
    assert json.loads(json_path.read_text()) == rows


def test_aggregate_pivots_one_component():
    table = report.aggregate(fixture_rows(), "phase")
    assert len(table) == 4  # 2 doses x 2 methods
    first = table[0]
    assert (first["dose"], first["method"]) == (1e3, "iterative")
    assert first["ms_ssim"] == 0.7 and first["frc50"] == 0.7
    markdown = report.markdown_table(table, ["dose", "method", "ms_ssim"])
    assert markdown.splitlines()[2] == "| 1000 | iterative | 0.7 |"


def test_report_is_self_contained(tmp_path):
    rows = fixture_rows()
    rng = np.random.default_rng(0)
    panels = [
        report.Panel(
            1e3, "dense", name, rng.normal(size=(20, 20)) * np.exp(1j * rng.normal(size=(20, 20)))
        )
        for name in ("ground truth", "pinn_gs2", "iterative")
    ]
    curves = [
        {
            "dose": 1e3,
            "view": "dense",
            "method": "pinn_gs2",
            "frequency": np.linspace(0, 0.5, 10),
            "correlation": np.linspace(1, 0, 10),
            "half_bit": np.full(10, 0.3),
        }
    ]
    measurements = [
        {
            "dose": 1e3,
            "view": "dense",
            "split": "test",
            "target_fraction": 0.7,
            "nearest_overlap": 0.66,
            "knn_overlap": 0.52,
            "neighbor_count": 7,
            "coverage": 0.9,
        }
    ]
    figures = [
        report.reconstruction_grid(panels, 1e3, "dense", tmp_path / "grid.png"),
        report.metric_vs_dose(rows, "dense", "phase", tmp_path / "curves.png"),
        report.frc_curves(curves, 1e3, "dense", tmp_path / "frc.png"),
        report.overlap_figure(measurements, tmp_path / "overlap.png"),
    ]
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = report.markdown_table(
        report.aggregate(rows, "phase"), ["dose", "view", "method", "ms_ssim"]
    )
    md_path, html_path = report.write_report(
        tmp_path, "Test study", [("Phase scores", table)], figures
    )
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "<table>" in page and "<td>iterative</td>" in page
    assert 'src="http' not in page and "grid.png" not in page.replace('alt="grid"', "")
    assert "![grid](grid.png)" in md_path.read_text()


def test_overlap_plot_draws_target_against_both_measures_and_names_every_mark():
    rows = [
        {
            "dose": dose,
            "view": view,
            "split": split,
            "target_fraction": target,
            "nearest_overlap": nearest,
            "knn_overlap": nearest - 0.15,
            "neighbor_count": 7,
            "coverage": 0.9,
        }
        for dose in (1e3, 1e4)
        for split in ("train", "test")
        for view, target, nearest in (
            ("baseline", None, 0.85),
            ("dense", 0.7, 0.66),
            ("sparse", 0.2, 0.14),
        )
    ]
    figure = report.overlap_plot(rows)
    left, right = figure.axes
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:3] == [
        "baseline (full scan, no target)",
        "dense (target 0.7)",
        "sparse (target 0.2)",
    ]
    assert {
        "nearest-neighbour overlap",
        "mean overlap with the 7 nearest neighbours",
        "coverage of the field of view (right)",
        "measured = target (left)",
        "target ± 0.1 (left)",
    } <= set(labels)
    # Left: two measures for each of the 8 rows with a target, at x = target; right: 3 per row.
    points = np.concatenate([collection.get_offsets() for collection in left.collections[1:]])
    assert len(points) == 16 and len(right.collections) == 36
    for target, nearest in ((0.7, 0.66), (0.2, 0.14)):
        near = points[np.abs(points[:, 0] - target) < 0.05]
        assert sorted(np.round(near[:, 1], 2)) == [round(nearest - 0.15, 2)] * 4 + [nearest] * 4
    matplotlib.pyplot.close(figure)


def test_an_undefined_value_is_null_empty_na_and_a_gap_end_to_end(tmp_path):
    rows = fixture_rows()

    def chosen(row, dose):
        return row["metric"] == "ms_ssim" and row["method"] == "iterative" and row["dose"] == dose

    undefined = next(r for r in rows if chosen(r, 1e4))
    undefined.update(value=None, reason="illuminated square 9 px, too small for 2 scales")
    csv_path, json_path = report.write_tidy(rows, tmp_path)
    stored = next(r for r in json.loads(json_path.read_text()) if chosen(r, 1e4))
    assert stored["value"] is None and stored["reason"].startswith("illuminated square")
    with open(csv_path, newline="") as fh:
        line = next(r for r in csv.DictReader(fh) if chosen(r, "10000.0"))
    assert line["value"] == "" and line["reason"] == undefined["reason"]
    columns = ["dose", "method", "ms_ssim", "ssim"]
    table = report.markdown_table(report.aggregate(rows, "phase"), columns)
    reason = "n/a (illuminated square 9 px, too small for 2 scales)"
    expected = f"| 10000 | iterative | {reason} | 0.8 |"
    assert expected in table.splitlines()
    doses, values = report.dose_series(rows, "dense", "iterative", "phase", "ms_ssim")
    assert list(doses) == [1e3, 1e4] and values[0] == 0.7
    assert np.isnan(values[1])  # NaN: matplotlib leaves a gap in the line
    figure = report.metric_vs_dose(rows, "dense", "phase", tmp_path / "curves.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_rows_share_the_truth_colour_limits():
    truth = np.full((4, 4), 0.5 + 0j)
    truth[0, 0] = 1.0 * np.exp(1j * 0.8)
    panels = [
        report.Panel(1e3, "dense", "ground truth", truth),
        report.Panel(1e3, "dense", "method", np.full((4, 4), 3.0 * np.exp(-2.5j))),
    ]
    assert report.colour_limits(panels, np.abs) == (0.5, 1.0)
    assert report.colour_limits(panels, np.angle) == pytest.approx((0.0, 0.8))
    alone = [report.Panel(1e3, "dense", "method", np.array([[np.nan, 1.0], [2.0, 3.0]]))]
    assert report.colour_limits(alone, np.abs) == pytest.approx((1.02, 2.98))  # NaN ignored


def test_probe_figure_is_a_png_of_three_panels(tmp_path, monkeypatch):
    probe = np.ones((16, 16), np.complex64)
    path = report.probe_figure(probe, np.abs(probe), np.abs(probe) > 0.5, tmp_path / "q.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    drawn = []
    monkeypatch.setattr(report, "_save", lambda figure, path: drawn.append(figure) or path)
    report.probe_figure(probe, np.abs(np.fft.fft2(probe)), np.abs(probe) > 0.5, tmp_path / "p.png")
    assert [ax.get_title() for ax in drawn[0].axes if ax.get_title()] == [
        "amplitude (orange: footprint)",
        "phase (rad)",
        "far-field intensity (log10 of peak)",
    ]
