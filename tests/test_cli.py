"""The ``spectra`` command: file subcommands against dense oracles, and every bad input giving
one line on stderr and exit code 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.linalg
import scipy.sparse

import spectra
from spectra._cli import main
from tests.conftest import random_symmetric

EIGENVALUES = np.concatenate([np.linspace(-1.0, 1.0, 50), [3.0, 4.0, 5.0]])


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    A, _ = random_symmetric(EIGENVALUES, seed=1)
    return (A + A.T) / 2


@pytest.fixture
def mtx(tmp_path: Path, matrix: np.ndarray) -> Path:
    path = tmp_path / "A.mtx"
    scipy.io.mmwrite(path, scipy.sparse.coo_array(matrix), symmetry="symmetric")
    return path


@pytest.fixture
def npz(tmp_path: Path, matrix: np.ndarray) -> Path:
    path = tmp_path / "A.npz"
    scipy.sparse.save_npz(path, scipy.sparse.csr_array(matrix))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``spectra argv`` (in this process)."""
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse: --help, --version and option errors
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("which", ["LA", "SA", "BE"])
@pytest.mark.parametrize("method", ["lanczos", "lobpcg"])
def test_eigs_json_matches_dense_eigh(
    capsys: pytest.CaptureFixture[str], mtx: Path, which: str, method: str
) -> None:
    code, out, err = run(
        capsys, "eigs", str(mtx), "--k", "4", "--which", which, "--method", method, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    exact = np.sort(EIGENVALUES)
    expected = {"LA": exact[-4:], "SA": exact[:4], "BE": np.r_[exact[:2], exact[-2:]]}[which]
    np.testing.assert_allclose(report["eigenvalues"], expected, atol=1e-8)
    assert all(report["converged"]) and report["n"] == 53 and report["method"] == method
    assert np.all(
        np.abs(np.array(report["eigenvalues"]) - expected)
        <= np.array(report["error_bounds"]) + 1e-12
    )


def test_eigs_table_and_plot(capsys: pytest.CaptureFixture[str], npz: Path, tmp_path: Path) -> None:
    figure = tmp_path / "eigs.png"
    code, out, err = run(capsys, "eigs", str(npz), "--k", "3", "--plot", str(figure))
    assert code == 0, err
    assert "n = 53" in out and "3/3 converged" in out
    for value in ("3", "4", "5"):
        assert any(line.split()[1:2] == [f"{float(value):.12g}"] for line in out.splitlines())
    assert figure.stat().st_size > 1000 and str(figure) in out


def test_trace_json_within_its_standard_errors(
    capsys: pytest.CaptureFixture[str], mtx: Path
) -> None:
    code, out, err = run(capsys, "trace", str(mtx), "--num-matvecs", "20", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["n_matvec"] <= 20 and report["stderr"] > 0
    assert abs(report["estimate"] - EIGENVALUES.sum()) <= 4 * report["stderr"]


def test_trace_exact_with_a_budget_of_n(capsys: pytest.CaptureFixture[str], mtx: Path) -> None:
    code, out, _ = run(capsys, "trace", str(mtx), "--num-matvecs", "53", "--method", "hutchinson")
    assert code == 0
    assert f"{EIGENVALUES.sum():.6g}"[:6] in out.replace("trace ~ ", "")


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_density_quantiles_and_plot(
    capsys: pytest.CaptureFixture[str], mtx: Path, tmp_path: Path, method: str
) -> None:
    figure = tmp_path / f"{method}.svg"
    code, out, err = run(
        capsys, "density", str(mtx), "--method", method, "--json", "--plot", str(figure)
    )
    assert code == 0, err
    report = json.loads(out)
    quantiles = report["quantiles"]
    assert quantiles["0"] <= quantiles["0.5"] <= quantiles["1"]
    # Half of the 53 eigenvalues lie below 0 (25 of the 50 in [-1, 1] are negative).
    assert abs(quantiles["0.5"]) < 0.3
    if method == "slq":  # Gauss nodes inside the spectrum; the top node finds lambda_max = 5
        assert EIGENVALUES.min() - 1e-8 <= quantiles["0"] and quantiles["1"] <= 5 + 1e-8
        assert quantiles["1"] == pytest.approx(5.0, abs=1e-6)
        assert sum(report["weights"]) == pytest.approx(1.0)
    assert figure.read_text().startswith("<?xml") and str(figure) in err


def test_complex_hermitian_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    B = rng.standard_normal((30, 30)) + 1j * rng.standard_normal((30, 30))
    A = (B + B.conj().T) / 2
    path = tmp_path / "hermitian.mtx"
    scipy.io.mmwrite(path, A)
    code, out, err = run(capsys, "eigs", str(path), "--k", "2", "--json")
    assert code == 0, err
    np.testing.assert_allclose(json.loads(out)["eigenvalues"], scipy.linalg.eigvalsh(A)[-2:])


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _socket(path: Path) -> Path:
    """A file that exists but that nobody, root included, can open for reading."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()
    return path


def _bad_file(tmp: Path, case: str) -> tuple[Path, str]:
    """The file for ``case`` and words its one-line error must contain."""
    rng = np.random.default_rng(0)
    if case == "missing":
        return tmp / "missing.mtx", "no such file"
    if case == "directory":
        return tmp, "is a directory"
    if case == "unreadable":
        return _socket(tmp / "socket.mtx"), "cannot be read"
    if case == "garbage mtx":
        return _write(tmp / "garbage.mtx", "hello world\n1 2 3\n"), "not a Matrix Market"
    if case == "binary garbage":
        return _write(tmp / "binary.npz", bytes(range(256))), "not a scipy sparse"
    if case == "dense npz":
        np.savez(tmp / "dense.npz", a=np.eye(3))
        return tmp / "dense.npz", "not a scipy sparse"
    if case == "unknown type":
        return _write(tmp / "A.csv", "1,0\n0,1\n"), "unknown file type"
    if case == "non-square":
        scipy.sparse.save_npz(tmp / "wide.npz", scipy.sparse.csr_array(np.ones((3, 4))))
        return tmp / "wide.npz", "3 x 4; a square matrix is needed"
    if case == "non-symmetric":
        scipy.io.mmwrite(tmp / "ns.mtx", scipy.sparse.coo_array(rng.standard_normal((6, 6))))
        return tmp / "ns.mtx", "not symmetric"
    if case == "complex non-Hermitian":
        scipy.io.mmwrite(tmp / "c.mtx", rng.standard_normal((5, 5)) * (1 + 1j))
        return tmp / "c.mtx", "not Hermitian"
    if case == "non-finite":
        scipy.io.mmwrite(tmp / "nan.mtx", np.array([[1.0, np.nan], [np.nan, 1.0]]))
        return tmp / "nan.mtx", "NaN or infinite"
    assert case == "empty"
    header = "%%MatrixMarket matrix coordinate real general\n0 0 0\n"
    return _write(tmp / "empty.mtx", header), "empty"


FILE_CASES = [
    "missing",
    "directory",
    "unreadable",
    "garbage mtx",
    "binary garbage",
    "dense npz",
    "unknown type",
    "non-square",
    "non-symmetric",
    "complex non-Hermitian",
    "non-finite",
    "empty",
]


def _one_line_error(code: int, out: str, err: str, command: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith(f"spectra {command}: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["eigs", "trace", "density"])
@pytest.mark.parametrize("case", FILE_CASES)
def test_bad_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, command: str
) -> None:
    path, words = _bad_file(tmp_path, case)
    code, out, err = run(capsys, command, str(path))
    _one_line_error(code, out, err, command)
    assert words in err and str(path) in err, err


BAD_OPTIONS = [
    (["eigs", "--k", "0"], "--k must be a positive integer"),
    (["eigs", "--k", "two"], "--k must be a positive integer"),
    (["eigs", "--k", "54"], "k must satisfy 1 <= k <= n = 53"),
    (["eigs", "--which", "SM"], "invalid choice: 'SM'"),
    (["eigs", "--tol", "-1"], "--tol must be a number in [0, 1)"),
    (["eigs", "--tol", "nan"], "--tol must be a number in [0, 1)"),
    (["eigs", "--method", "arpack"], "invalid choice: 'arpack'"),
    (["eigs", "--seed", "-3"], "--seed must be a non-negative integer"),
    (["eigs", "--plot", "figure.txt"], "unknown image type"),
    (["eigs", "--plot", "no/such/folder/figure.png"], "does not exist"),
    (["trace", "--method", "exact"], "invalid choice: 'exact'"),
    (["trace", "--num-matvecs", "1"], "num_matvecs must be at least 4"),
    (["trace", "--num-matvecs", "0"], "--num-matvecs must be a positive integer"),
    (["trace", "--k", "3"], "unrecognized arguments: --k 3"),
    (["density", "--method", "kpm", "--num-steps", "5"], "--num-steps applies to --method slq"),
    (["density", "--degree", "5"], "--degree applies to --method kpm"),
    (["density", "--num-probes", "0"], "--num-probes must be a positive integer"),
    (["density", "--plot", "rho.gif"], "unknown image type"),
]


@pytest.mark.parametrize(("argv", "words"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], mtx: Path, argv: list[str], words: str
) -> None:
    command, *options = argv
    code, out, err = run(capsys, command, str(mtx), *options)
    _one_line_error(code, out, err, command)
    assert words in err, err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["eig"], "invalid choice: 'eig'"),
        (["eigs"], "the following arguments are required: FILE"),
        (["demo", "--backend", "numpy"], "invalid choice: 'numpy'"),
        (["demo", "--steps", "0"], "must be a positive integer"),
        (["demo", "--lr", "-1"], "must be a positive number"),
        (["demo", "--out", "no/such/folder"], "no such folder"),
    ],
)
def test_bad_command_line_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, (code, out, err)
    assert words in err and "Traceback" not in err, err


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("demo", "eigs", "trace", "density"):
        assert command in out
    code, out, _ = run(capsys, "demo", "--help")
    assert code == 0
    for words in ("2/lambda_max", "XTrace", "outliers", "scipy.linalg.eigh", "--backend", "--out"):
        assert words in out


def test_python_dash_m_and_console_script_agree() -> None:
    """``python -m spectra`` runs the command (in a fresh interpreter: the real entry point)."""
    completed = subprocess.run(
        [sys.executable, "-m", "spectra", "eigs", "missing.mtx"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr == "spectra eigs: error: missing.mtx: no such file\n"


@pytest.mark.parametrize("n", [300, 1000])
@pytest.mark.parametrize("seed", range(8))
def test_demo_bulk_edge_separates_bulk_from_outliers(n: int, seed: int) -> None:
    """The demo's outlier rule (nodes standing for at least one eigenvalue form the bulk) puts
    the edge between a uniform bulk in [0, 1] and three isolated eigenvalues, on a family."""
    from spectra._cli._demo import SLQ_PROBES, SLQ_STEPS, bulk_edge

    values = np.concatenate([np.linspace(0.0, 1.0, n - 3), [2.0, 3.0, 4.0]])
    A, _ = random_symmetric(values, seed=seed)
    rho = spectra.slq((A + A.T) / 2, num_probes=SLQ_PROBES, num_steps=SLQ_STEPS, seed=seed)
    edge = bulk_edge(rho)
    assert 0.8 <= edge < 2.0, edge


def test_demo_without_torch_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, err = run(capsys, "demo", "--out", str(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert "needs torch, which is not installed" in err and "spectra-linalg[demo]" in err
