import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from detectors.columns import LazyColumns
from service.cli.check import _read, check

app = typer.Typer()


@app.callback()
def _root() -> None:
    """Subcommand mode, as in service.cli.main."""


app.command("check")(check)
runner = CliRunner()


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["a", "b", "c"], n),
            "label": rng.integers(0, 2, n),
            "pred": rng.integers(0, 2, n),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "ref": tmp_path / "ref.csv",
        "same": tmp_path / "same.parquet",
        "drift": tmp_path / "drift.csv",
        "other": tmp_path / "other.csv",
        "bad": tmp_path / "bad.csv",
    }
    frame(3000, 0).to_csv(paths["ref"], index=False)
    frame(2000, 1).to_parquet(paths["same"])
    frame(2000, 2, shift=1.0).to_csv(paths["drift"], index=False)
    frame(2000, 3).drop(columns="income").to_csv(paths["other"], index=False)
    paths["bad"].write_bytes(b"\x00\x01 not a csv \xff\xfe")
    return paths


def run(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, ["check", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_table_output_and_exit_zero(files: dict[str, Path]) -> None:
    code, out, _ = run(files["ref"], files["same"], "--no-multivariate")
    assert code == 0
    assert "dataset: no_drift" in out and "wasserstein" in out and "jensenshannon" in out


def test_json_document_and_fail_on_drift(files: dict[str, Path]) -> None:
    code, out, _ = run(files["ref"], files["drift"], "--json", "--fail-on-drift", "--target", "label",
                       "--prediction", "pred")  # fmt: skip
    assert code == 1
    doc = json.loads(out)
    assert doc["status"] == "drift" and doc["dataset_drift"] is True
    assert [f["name"] for f in doc["features"]] == ["age", "income", "city"]
    assert set(doc["features"][0]) >= {
        "name",
        "kind",
        "method",
        "statistic",
        "p_val",
        "threshold",
        "is_drift",
    }
    assert doc["predictions"][0]["name"] == "pred"
    assert doc["performance"]["metric"] == "accuracy"
    assert doc["multivariate"]["method"] == "domain_classifier"
    assert run(files["ref"], files["drift"], "--json")[0] == 0  # drift without --fail-on-drift exits 0


def test_methods_thresholds_columns_and_correction(files: dict[str, Path]) -> None:
    code, out, _ = run(files["ref"], files["same"], "--json", "--method", "income=psi", "--threshold",
                       "income=0.2", "--threshold", "psi=0.15", "-c", "age,income", "--method", "age=ks",
                       "--correction", "bonferroni", "--no-multivariate")  # fmt: skip
    assert code == 0
    feats = {f["name"]: f for f in json.loads(out)["features"]}
    assert set(feats) == {"age", "income"}
    assert (feats["income"]["method"], feats["income"]["threshold"]) == ("psi", 0.2)
    assert feats["age"]["method"] == "ks" and feats["age"]["threshold"] == 0.05  # one p-value test: /1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "same"], "cannot read"),
        (["bad", "same"], "cannot read"),
        (["ref", "ref.txt"], "unsupported file type"),
        (["ref", "other"], "schemas differ"),
        (["ref", "same", "-c", "nope"], "unknown column"),
        (["ref", "same", "--method", "age=energy"], "valid: ks"),
        (["ref", "same", "--method", "city=ks"], "valid: chisquare"),
        (["ref", "same", "--threshold", "zz=0.1"], "not a method or a checked column"),
        (["ref", "same", "--threshold", "psi=high"], "not a number"),
        (["ref", "same", "--correction", "holm"], "valid: none, bonferroni, fdr"),
        (["ref", "same", "--drift-share", "2"], "drift_share"),
    ],
)
def test_user_errors_exit_two_with_message(
    files: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    resolved = [str(files[a]) if a in files else (str(tmp_path / a) if a.endswith((".csv", ".txt")) else a)
                for a in args]  # fmt: skip
    code, out, err = run(*resolved)
    assert code == 2
    assert message in err and err.startswith("error: ")
    assert out == ""


def test_type_mismatch_is_a_schema_error(files: dict[str, Path], tmp_path: Path) -> None:
    cur = frame(500, 4)
    cur["age"] = "old"
    path = tmp_path / "typed.csv"
    cur.to_csv(path, index=False)
    code, _, err = run(files["ref"], path)
    assert code == 2 and "must be numeric" in err


def test_missing_value_surge_in_table_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref, cur = frame(20_000, 6), frame(20_000, 7)
    ref.loc[rng.random(20_000) < 0.01, "income"] = np.nan
    cur.loc[rng.random(20_000) < 0.30, "income"] = np.nan  # a broken upstream join
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    code, out, _ = run(tmp_path / "ref.parquet", tmp_path / "cur.parquet", "--no-multivariate")
    assert code == 0
    income = next(line for line in out.splitlines() if line.startswith("income"))
    assert "data_quality" in income and "1.0%>30.1%" in income
    assert "^ missing values rose from 1.0% to" in out
    assert "data quality: missing values surged in income" in out
    code, out, _ = run(tmp_path / "ref.parquet", tmp_path / "cur.parquet", "--no-multivariate", "--json")
    doc = json.loads(out)
    feats = {f["name"]: f for f in doc["features"]}
    assert feats["income"]["status"] == "data_quality" and feats["income"]["missing_is_drift"] is True
    assert feats["income"]["missing_p_val"] < 1e-10 and feats["income"]["missing_effect_size"] > 0.9
    assert feats["income"]["reason"].startswith("missing values rose")
    assert feats["age"]["missing_is_drift"] is False and feats["age"]["reason"] == ""
    assert doc["data_quality"] is True and doc["data_quality_features"] == ["income"]


def test_parquet_columns_are_read_to_arrays_without_the_pandas_index(tmp_path: Path) -> None:
    indexed = frame(500, 8).set_index(np.arange(1000, 1500))  # stored as __index_level_0__
    indexed.loc[indexed.index[:5], "city"] = None
    indexed.to_parquet(tmp_path / "indexed.parquet")
    columns = _read(tmp_path / "indexed.parquet")
    assert isinstance(columns, LazyColumns) and list(columns) == ["age", "income", "city", "label", "pred"]
    assert columns["age"].dtype == np.float64 and columns["city"][0] is None
    code, out, _ = run(
        tmp_path / "indexed.parquet", tmp_path / "indexed.parquet", "--json", "--no-multivariate"
    )
    assert code == 0 and [f["name"] for f in json.loads(out)["features"]] == [
        "age",
        "income",
        "city",
        "label",
        "pred",
    ]


def test_parquet_numbers_with_nulls_slices_and_row_groups_read_as_pandas_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    df = pd.DataFrame({"f": rng.normal(size=3000), "i": rng.integers(0, 9, 3000), "u8": np.uint8(7)})
    df["f_null"] = df["f"].where(rng.random(3000) > 0.2)
    df["i_null"] = df["i"].astype("Int32").where(rng.random(3000) > 0.1)
    df.to_parquet(tmp_path / "groups.parquet", row_group_size=700)  # 5 row groups, 5 chunks a column
    columns = _read(tmp_path / "groups.parquet")
    expected = pd.read_parquet(tmp_path / "groups.parquet")
    for name in expected.columns:
        want = expected[name].to_numpy(dtype=np.float64, na_value=np.nan)
        np.testing.assert_array_equal(np.asarray(columns[name], dtype=np.float64), want)
    assert columns["i"].dtype == np.int64 and columns["u8"].dtype == np.uint8
    assert columns["i_null"].dtype == np.float64 and np.isnan(columns["i_null"]).any()
    assert all(isinstance(columns[name], np.ndarray) for name in expected.columns)


def test_numeric_parquet_check_loads_no_pandas_scipy_sklearn_or_settings(tmp_path: Path) -> None:
    """`driftloop check` on numeric Parquet: the heavy stacks it does not need stay unloaded (each costs
    0.1-0.9 s of a ~1 s run; see bench/RESULTS.md)."""
    rng = np.random.default_rng(10)
    for name, shift in (("ref", 0.0), ("cur", 0.5)):
        frame = pd.DataFrame({f"x{i}": rng.normal(shift if i == 0 else 0.0, 1, 20_000) for i in range(3)})
        frame.to_parquet(tmp_path / f"{name}.parquet")
    files = [str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")]
    script = (
        "import sys\n"
        "from service.cli.main import app\n"
        f"sys.argv = ['driftloop', 'check', *{files!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'scipy', 'sklearn', 'pydantic_settings', 'sqlalchemy', 'fastapi', 'mlflow')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "x0 " in proc.stdout and "drift" in proc.stdout  # it did check
    assert proc.stdout.strip().splitlines()[-1] == "[]"
