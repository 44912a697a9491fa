"""`effnet info` through the real console entry point."""

import subprocess
import sys

from effnet.cli import main


def test_family_table_lists_every_model_with_exact_params(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name, params in [("b0", "5,288,548"), ("b7", "66,347,960"), ("l2", "480,309,308"), ("lite4", "13,006,568")]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert params in line
    assert out.splitlines()[0].split() == ["model", "width", "depth", "resolution", "dropout", "params", "GMACs", "blocks"]


def test_stage_table_for_b3(capsys):
    assert main(["info", "b3", "--stages"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line[:5].strip().isdigit()]
    assert len(rows) == 9
    assert rows[0][-3:] == ["300x300", "40", "1"]
    assert rows[-1][-3:] == ["10x10", "1536", "1"]
    assert [r[-1] for r in rows[1:-1]] == ["2", "3", "3", "5", "5", "6", "2"]


def test_custom_phi(capsys):
    assert main(["info", "--phi", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "phi2.5" in out and "320x320" in out


def test_unknown_model_is_one_line_error_listing_names():
    proc = subprocess.run([sys.executable, "-m", "effnet", "info", "b9"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown model 'b9'" in proc.stderr and "lite4" in proc.stderr
