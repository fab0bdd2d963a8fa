"""Security basics: a study file never constructs Python objects, and no command prints or writes the storage
password (a real PostgreSQL, every command as a user runs it, every byte searched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy.engine import make_url

from robustbench_vit.cli import main

ROOT = Path(__file__).resolve().parents[1]
STEM = f"{ROOT / 'examples' / 'overlap_stem.py'}:OverlapPatchStem"


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system [\"touch pwned\"]", "!!python/name:os.system",
                                 "!!python/object:builtins.dict {}"])
def test_a_python_tag_in_a_study_file_is_refused_in_one_line(tag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.yaml"
    path.write_text(f"models: [vit_p_micro]\ndescription: {tag}\ntrain: {{epochs: 1}}\nspace:\n"
                    f"  lr: {{values: [0.001]}}\n")
    assert main(["study", "run", str(path), "--runs-dir", "runs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: line 2 the Python tag !!python/" in err[0] and "is refused" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yaml"]  # nothing ran, nothing written


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """One command as a user runs it: its own process, output to pipes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "robustbench_vit.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _texts(folder: Path) -> dict[str, str]:
    """Every file under `folder` as text: raw bytes (pickles, HTML, CSV, logs), plus what PDFs and Parquet files
    hold once decompressed."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        out[str(f)] = f.read_bytes().decode("utf-8", "replace")
        if f.suffix == ".pdf":
            out[f"{f} (text)"] = "".join(page.extract_text() for page in PdfReader(f).pages)
        elif f.suffix == ".parquet":
            out[f"{f} (table)"] = pd.read_parquet(f).to_csv()
    return out


def _stored(url: str) -> str:
    """Every study and trial attribute stored in the database, as JSON."""
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    out = []
    for s in storage.get_all_studies():
        out.append({"name": s.study_name, "user": s.user_attrs, "system": s.system_attrs})
        for t in storage.get_all_trials(s._study_id):
            out.append({"user": t.user_attrs, "system": t.system_attrs, "params": t.params})
    return json.dumps(out, default=str)


@pytest.mark.slow
@pytest.mark.postgres
def test_no_command_prints_or_writes_the_storage_password(postgres_url, tmp_path):
    """study run (2 local workers), status (also of an unknown study), compare, report, export and reproduce on a
    PostgreSQL storage: the password is nowhere in what they printed, in any file under the working folder (runs,
    submitit pickles and logs, reports, PDFs, exports) or in the stored attributes."""
    password = make_url(postgres_url).password  # the fixture's role: a random 24-character password, known here
    assert password and len(password) >= 16
    sets = ["--set", "design.points=2", "--set", "train.epochs=1", "--set", "reference=null",  # the two ViTs only
            "--set", f"description={uuid.uuid4().hex}"]
    where = ["--storage", postgres_url]
    run = _cli(["study", "run", "lr_wd_stability", *sets, *where, "--workers", "2"], tmp_path)
    assert run.returncode == 0, run.stderr
    name = run.stdout.split("next: robustbench-vit report ")[1].split()[0]  # lr_wd_stability-set-HASH
    assert "4/4 trials finished" in run.stdout and "***@" in run.stdout
    assert list((tmp_path / "runs" / name / "submitit").glob("*.pkl"))  # the workers' pickles are searched too
    commands = [["study", "status", name, *where], ["study", "status", "no_such_study", *where],
                ["compare", "--stem", STEM, "--study", "lr_wd_stability", *sets, *where, "--workers", "1"],
                ["report", name, "--format", "html,pdf", *where], ["export", name, "--out", "t.parquet", *where],
                ["reproduce", "--claims", "adamw_lr_wd", *sets, *where, "--workers", "1"]]
    printed = [run]
    for args in commands:
        printed.append(_cli(args, tmp_path))
        assert printed[-1].returncode == (2 if "no_such_study" in args else 0), (args, printed[-1].stderr)
    unknown = printed[2].stderr.strip()
    assert unknown.startswith("robustbench-vit: error: no study 'no_such_study' in postgresql+psycopg2://rbvit:***@")
    assert "; results: postgresql+psycopg2://rbvit:***@" in printed[3].stderr  # compare's closing line
    assert "adamw_lr_wd (micro)" in printed[-1].stdout and "4/4 trials finished; 0 ran now" in printed[-1].stderr
    texts = {" ".join(p.args[3:6]): p.stdout + p.stderr for p in printed} | _texts(tmp_path)
    assert any(f.endswith("report.pdf (text)") for f in texts) and any(f.endswith("scorecard.html") for f in texts)
    texts["stored attributes"] = _stored(postgres_url)
    assert [f for f, text in texts.items() if password in "".join(text.split())] == []  # also where a line wraps
