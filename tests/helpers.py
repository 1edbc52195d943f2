"""Helpers shared by tests in several folders (fixtures live in the conftest files)."""

from pathlib import Path

from ptypinn.io.artifacts import file_record, write_json
from ptypinn.study.layout import OVERLAP_MANIFEST, SIMULATION_MANIFEST, SPLITS

ENGINE_BUDGET = 60  # iterations each engine gets on the noiseless test case


def record_phases(phase_c: Path, phase_d: Path, doses, views) -> None:
    """Write the phase C and D manifests that list the split files already in the two folders,
    as `simulate` and `overlap` would have."""

    def splits(root: Path, folder: str) -> dict:
        return {split: file_record(root / folder / f"{split}.npz", root) for split in SPLITS}

    write_json(
        phase_c / SIMULATION_MANIFEST,
        {
            "phase": "C",
            "doses": [
                {
                    "dose": float(dose),
                    "folder": f"dose_{dose}",
                    "files": splits(phase_c, f"dose_{dose}"),
                }
                for dose in doses
            ],
        },
    )
    write_json(
        phase_d / OVERLAP_MANIFEST,
        {
            "phase": "D",
            "source_manifest": file_record(phase_c / SIMULATION_MANIFEST, phase_c),
            "doses": [
                {
                    "dose": float(dose),
                    "folder": f"dose_{dose}",
                    "views": [
                        {
                            "view": view,
                            "formed": True,
                            "files": splits(phase_d, f"dose_{dose}/{view}"),
                        }
                        for view in views
                    ],
                }
                for dose in doses
            ],
            "not_formed": [],
        },
    )


def plain(record):
    """A manifest record as the JSON its phase writes (what the assertions read)."""
    return record.model_dump(mode="json")
