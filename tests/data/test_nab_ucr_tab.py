"""NAB, UCR-archive and TAB-format loaders on files written here in each exact layout, plus the shared real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.nab import load_nab, nab_probationary_rows, nab_series
from fsad.data.sources.tab import load_tab
from fsad.data.sources.ucr import load_ucr, parse_ucr_name, ucr_series
from tests.conftest import shared_path

# ----------------------------------------------------------------------------------------------------------- NAB

START = pd.Timestamp("2014-01-01 00:00:00")


def stamp(row: int) -> str:
    """Window-end format of NAB's labels file for the row ``row`` of a 5-minute series."""
    return (START + pd.Timedelta(minutes=5 * row)).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_nab(root: Path, series: dict[str, int], windows: dict[str, list]) -> None:
    """``series`` maps ``category/name.csv`` to a row count; values are the row numbers (0, 1, 2, ...)."""
    for key, n in series.items():
        path = root / "data" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        times = pd.date_range(START, periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
        pd.DataFrame({"timestamp": times, "value": np.arange(n, dtype=float)}).to_csv(path, index=False)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


@pytest.fixture()
def nab_root(tmp_path: Path) -> Path:
    windows = {"realToy/b.csv": [[stamp(2), stamp(3)], [stamp(5), stamp(7)], [stamp(18), stamp(18)]],
               "artificialToy/a.csv": []}
    write_nab(tmp_path, {"realToy/b.csv": 20, "artificialToy/a.csv": 10}, windows)
    return tmp_path


def test_nab_window_labels_are_inclusive_and_the_split_is_a_fraction(nab_root: Path):
    record = load_nab(nab_root, "realToy/b.csv", train_fraction=0.2)
    assert record.train.shape == (4, 1) and record.test.shape == (16, 1)  # int(20 * 0.2) = 4 training rows
    assert record.train[:, 0].tolist() == [0, 1, 2, 3] and record.test[0, 0] == 4
    # file rows 5, 6, 7 (both window ends) and 18 (a one-point window) -> test positions 1, 2, 3 and 14
    assert np.flatnonzero(record.test_labels).tolist() == [1, 2, 3, 14]
    assert record.test_labels.dtype == np.int8 and record.channel_names == ["value"]
    meta = record.meta
    assert meta["train_anomalies"] == 2  # rows 2 and 3: counted, kept in the training part
    assert (meta["layout"], meta["missing_values_filled"], meta["n_windows"], meta["n_rows"]) == ("nab", 0, 3, 20)
    assert meta["first_test_timestamp"] == "2014-01-01 00:20:00"
    assert record.source == str(nab_root / "data" / "realToy" / "b.csv")


def test_nab_default_fraction_key_without_csv_and_series_list(nab_root: Path):
    record = load_nab(nab_root, "realToy/b")
    assert record.train.shape == (3, 1) and record.meta["train_fraction"] == 0.15  # int(20 * 0.15) = 3
    assert record.meta["train_anomalies"] == 1  # row 2 only
    assert nab_series(nab_root) == ["artificialToy/a.csv", "realToy/b.csv"]
    assert load_nab(nab_root, "artificialToy/a.csv").test_labels.sum() == 0
    assert (nab_probationary_rows(20), nab_probationary_rows(10320)) == (3, 750)  # NAB caps at 0.15 * 5000


def test_nab_unknown_and_unlabelled_series(nab_root: Path):
    with pytest.raises(DataValidationError, match=r"unknown NAB series 'realToy/zz'.*available: artificialToy/a.csv"):
        load_nab(nab_root, "realToy/zz")
    write_nab(nab_root, {"realToy/c.csv": 5}, json.loads((nab_root / "labels" / "combined_windows.json").read_text()))
    with pytest.raises(DataValidationError, match=r"combined_windows.json: series 'realToy/c.csv' is missing"):
        load_nab(nab_root, "realToy/c.csv")


def test_nab_bad_timestamps_and_fraction(nab_root: Path):
    path = nab_root / "data" / "realToy" / "b.csv"
    frame = pd.read_csv(path)
    frame.loc[7, "timestamp"] = "yesterday"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError,
                       match=r"b.csv: field 'timestamp' has 1 unparsable.*line 9 of the file: 'yesterday'"):
        load_nab(nab_root, "realToy/b.csv")
    windows = {"realToy/b.csv": [["2014-13-45 00:00:00", stamp(3)]], "artificialToy/a.csv": []}
    (nab_root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    frame.loc[7, "timestamp"] = stamp(7)[:19]
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"combined_windows.json: field 'realToy/b.csv window 0' has 1 "
                                                  r"unparsable timestamps \(first at position 0: '2014-13-45 00:00:00'\)"):
        load_nab(nab_root, "realToy/b.csv")
    with pytest.raises(DataValidationError, match=r"a.csv: field 'train_fraction' gives a training length of 0"):
        load_nab(nab_root, "artificialToy/a.csv", train_fraction=0.05)


# ----------------------------------------------------------------------------------------------------------- UCR


def write_ucr(root: Path, name: str, values: np.ndarray, one_line: bool = False) -> None:
    root.mkdir(parents=True, exist_ok=True)
    sep = " " if one_line else "\n"
    (root / name).write_text(sep.join(f"{v:.7e}" for v in values) + "\n")


@pytest.fixture()
def ucr_root(tmp_path: Path) -> Path:
    write_ucr(tmp_path, "001_UCR_Anomaly_toy_10_14_16.txt", np.arange(20.0))
    write_ucr(tmp_path, "002_UCR_Anomaly_flat_line_5_8_8.txt", np.arange(12.0) * 2, one_line=True)
    (tmp_path / "SOURCE.txt").write_text("not a series\n")
    return tmp_path


def test_ucr_one_based_positions_and_split(ucr_root: Path):
    record = load_ucr(ucr_root, "001_UCR_Anomaly_toy_10_14_16.txt")
    assert record.train.shape == (10, 1) and record.test.shape == (10, 1)
    assert record.train[:, 0].tolist() == list(range(10)) and record.test[0, 0] == 10
    # points 14..16 counted from 1 = 0-based 13..15 = test positions 3..5
    assert np.flatnonzero(record.test_labels).tolist() == [3, 4, 5]
    assert record.meta["anomaly_indices"] == [13, 15] and record.meta["one_line"] is False
    assert record.test[3, 0] == 13.0  # the value at the first anomalous point
    tranad = load_ucr(ucr_root, 1, convention="tranad")  # labels[anomStart - trainEnd : anomEnd - trainEnd]
    assert np.flatnonzero(tranad.test_labels).tolist() == [4, 5]


def test_ucr_single_line_file_and_name_resolution(ucr_root: Path):
    record = load_ucr(ucr_root, "2")
    assert record.meta["one_line"] is True and record.meta["n_values"] == 12
    assert record.train[:, 0].tolist() == [0, 2, 4, 6, 8] and record.test.shape == (7, 1)
    assert np.flatnonzero(record.test_labels).tolist() == [2]  # point 8 from 1 = index 7 = test position 2
    assert record.meta["name"] == "flat_line"
    for key in ("002", 2, "002_UCR_Anomaly_flat_line_5_8_8", "002_UCR_Anomaly_flat_line_5_8_8.txt"):
        assert load_ucr(ucr_root, key).source == str(ucr_root / "002_UCR_Anomaly_flat_line_5_8_8.txt")
    assert ucr_series(ucr_root) == ["001_UCR_Anomaly_toy_10_14_16.txt", "002_UCR_Anomaly_flat_line_5_8_8.txt"]
    assert parse_ucr_name("SOURCE.txt") is None


def test_ucr_unknown_and_ambiguous_series(ucr_root: Path):
    with pytest.raises(DataValidationError, match=r"no UCR series '7'.*available: 001_UCR_Anomaly_toy"):
        load_ucr(ucr_root, 7)
    with pytest.raises(DataValidationError, match="SOURCE.txt: name does not follow the pattern"):
        load_ucr(ucr_root, "SOURCE.txt")
    write_ucr(ucr_root, "001_UCR_Anomaly_other_10_14_16.txt", np.arange(20.0))
    with pytest.raises(DataValidationError, match=r"'1' is ambiguous; candidates: 001_UCR_Anomaly_other.*toy"):
        load_ucr(ucr_root, "1")


def test_ucr_anomaly_outside_the_test_part_and_bad_values(tmp_path: Path):
    write_ucr(tmp_path, "003_UCR_Anomaly_early_10_10_12.txt", np.arange(20.0))  # 0-based 9 < trainEnd 10
    with pytest.raises(DataValidationError, match=r"early_10_10_12.txt: anomaly starts at 0-based index 9, inside "
                                                  r"the training part"):
        load_ucr(tmp_path, 3)
    assert load_ucr(tmp_path, 3, convention="tranad").test_labels.tolist()[:3] == [1, 1, 0]  # 0-based 10..11
    write_ucr(tmp_path, "004_UCR_Anomaly_late_10_15_21.txt", np.arange(20.0))
    with pytest.raises(DataValidationError, match=r"0-based indices 14..20; expected a non-empty range inside the 20"):
        load_ucr(tmp_path, 4)
    (tmp_path / "005_UCR_Anomaly_text_2_3_3.txt").write_text("1.0\n2.0\nabc\n4.0\n")
    with pytest.raises(DataValidationError,
                       match=r"text_2_3_3.txt: line 3 of the file, column 'value' \(value 3\): 'abc' is not a number"):
        load_ucr(tmp_path, 5)
    write_ucr(tmp_path, "006_UCR_Anomaly_notrain_0_3_4.txt", np.arange(20.0))
    with pytest.raises(DataValidationError, match=r"field 'trainEnd \(file name\)' gives a training length of 0"):
        load_ucr(tmp_path, 6)


# ----------------------------------------------------------------------------------------------------------- TAB

DATES = [f"2020-01-01 00:0{i}:00" for i in range(6)]


def long_rows(columns: dict[str, list], dates: list[str] = DATES) -> pd.DataFrame:
    """TAB's long format, one block per column in the given order (the way TAB writes its files)."""
    return pd.DataFrame([{"date": d, "data": v, "cols": name}
                         for name, values in columns.items() for d, v in zip(dates, values)])


def write_tab(root: Path, rows: list[dict], files: dict[str, pd.DataFrame]) -> None:
    """``rows`` of DETECT_META.csv; ``files`` maps ``folder/file_name`` to a long frame."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "DETECT_META.csv", index=False)
    for rel, frame in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(root / rel, index=False)


TOY = {"b": [10, 11, 12, 13, 14, 15], "a": [0, 1, 2, 3, 4, 5], "label": [0, 0, 0, 1, 1, 0]}


def meta_row(file_name: str, train_lens: int, univariate: bool = False, length: int = 6) -> dict:
    return {"file_name": file_name, "length": length, "dataset_name": file_name[:-4], "freq": "other",
            "if_univariate": univariate, "train_lens": train_lens, "anomaly_ratio": 0.1}


def test_tab_pivot_keeps_channel_order_and_splits_at_train_lens(tmp_path: Path):
    write_tab(tmp_path, [meta_row("TOY.csv", 2)], {"multi_ts/TOY.csv": long_rows(TOY)})
    record = load_tab(tmp_path, "TOY")
    assert record.channel_names == ["b", "a"]  # first appearance, not alphabetical; label dropped
    assert record.train.tolist() == [[10, 0], [11, 1]]
    assert record.test[:, 1].tolist() == [2, 3, 4, 5] and record.test_labels.tolist() == [0, 1, 1, 0]
    meta = record.meta
    assert (meta["layout"], meta["label_column"], meta["train_lens"], meta["n_rows"]) == ("tab", "label", 2, 6)
    assert meta["first_test_date"] == DATES[2] and meta["meta_length"] == 6 and meta["if_univariate"] is False
    assert record.source == str(tmp_path / "multi_ts" / "TOY.csv")


def test_tab_date_major_rows_and_label_first_give_the_same_record(tmp_path: Path):
    block = long_rows(TOY)
    interleaved = block.iloc[np.argsort(np.tile(np.arange(6), 3), kind="stable")]  # date by date
    relabelled = long_rows({"label": TOY["label"], "b": TOY["b"], "a": TOY["a"]})
    write_tab(tmp_path, [meta_row("I.csv", 3), meta_row("L.csv", 3)],
              {"multi_ts/I.csv": interleaved, "multi_ts/L.csv": relabelled})
    for name in ("I.csv", "L.csv"):
        record = load_tab(tmp_path, name)
        assert record.channel_names == ["b", "a"] and record.test_labels.tolist() == [1, 1, 0]
        assert record.train[:, 0].tolist() == [10, 11, 12]


def test_tab_univariate_release_layout_and_unnamed_label(tmp_path: Path):
    uni = long_rows({"value": [5, 6, 7, 8, 9, 1], "label": [0, 0, 0, 0, 1, 0]})
    no_label_name = long_rows({"x": [1, 2, 3, 4, 5, 6], "is_anomaly": [0, 0, 0, 1, 0, 0]})
    write_tab(tmp_path, [meta_row("U.csv", 4, univariate=True), meta_row("R.csv", 2)],
              {"uni_ts/U.csv": uni, "data/R.csv": no_label_name})
    uni_record = load_tab(tmp_path, "U.csv")
    assert uni_record.channel_names == ["value"] and uni_record.test_labels.tolist() == [1, 0]
    assert uni_record.train.shape == (4, 1) and uni_record.meta["if_univariate"] is True
    record = load_tab(tmp_path, "R")  # TAB's own release puts every file in data/
    assert record.meta["label_column"] == "is_anomaly" and record.channel_names == ["x"]
    assert record.test_labels.tolist() == [0, 1, 0, 0]


def test_tab_file_without_date_column_uses_block_positions(tmp_path: Path):
    write_tab(tmp_path, [meta_row("N.csv", 2)], {"multi_ts/N.csv": long_rows(TOY).drop(columns="date")})
    record = load_tab(tmp_path, "N.csv")
    assert record.channel_names == ["b", "a"] and record.test[:, 0].tolist() == [12, 13, 14, 15]


def test_tab_missing_value_policy_on_empty_cells(tmp_path: Path):
    frame = long_rows(TOY)
    frame.loc[2, "data"] = np.nan  # channel b at date 2
    write_tab(tmp_path, [meta_row("G.csv", 2)], {"multi_ts/G.csv": frame})
    with pytest.raises(DataValidationError,
                       match=r"G.csv: 1 missing/inf values \(first at line 4 of the file, column 'b'\)"):
        load_tab(tmp_path, "G")
    record = load_tab(tmp_path, "G", missing="ffill")
    assert record.meta["missing_values_filled"] == 1 and record.test[0, 0] == 11.0


def test_tab_missing_or_repeated_date_channel_value(tmp_path: Path):
    frame = long_rows(TOY)
    write_tab(tmp_path, [meta_row("M.csv", 2), meta_row("D.csv", 2)],
              {"multi_ts/M.csv": frame.drop(index=[9, 10]), "multi_ts/D.csv": pd.concat([frame, frame.iloc[[7]]])})
    with pytest.raises(DataValidationError, match=rf"M.csv: column 'a' has no value at date '{DATES[3]}' \(2 "):
        load_tab(tmp_path, "M")
    with pytest.raises(DataValidationError, match=rf"D.csv: column 'a' has more than one value at date '{DATES[1]}'"):
        load_tab(tmp_path, "D")


@pytest.mark.parametrize("train_lens", [0, 6, 9])
def test_tab_train_lens_out_of_range(tmp_path: Path, train_lens: int):
    write_tab(tmp_path, [meta_row("TOY.csv", train_lens)], {"multi_ts/TOY.csv": long_rows(TOY)})
    with pytest.raises(DataValidationError, match=rf"TOY.csv: field 'train_lens' gives a training length of "
                                                  rf"{train_lens} rows; expected strictly between 0 and the series "
                                                  r"length 6"):
        load_tab(tmp_path, "TOY")


def test_tab_meta_and_file_errors(tmp_path: Path):
    bad_label = long_rows({"v": [1, 2, 3, 4, 5, 6], "label": [0, 2, 0, 0, 0, 0]})
    write_tab(tmp_path, [meta_row("TOY.csv", 2), meta_row("GONE.csv", 2), meta_row("TOY2.csv", 2, True),
                         meta_row("BAD.csv", 2)],
              {"multi_ts/TOY.csv": long_rows(TOY), "uni_ts/TOY2.csv": long_rows(TOY), "multi_ts/BAD.csv": bad_label})
    with pytest.raises(DataValidationError, match=r"DETECT_META.csv: no row with file_name 'MSL.csv'; available: "
                                                  "TOY.csv, GONE.csv"):
        load_tab(tmp_path, "MSL")
    with pytest.raises(DataValidationError, match=r"series file 'GONE.csv' not found; looked for multi_ts/GONE.csv, "
                                                  r"uni_ts/GONE.csv, data/GONE.csv"):
        load_tab(tmp_path, "GONE")
    with pytest.raises(DataValidationError, match="TOY2.csv: 2 channels but .* says if_univariate=True"):
        load_tab(tmp_path, "TOY2")
    with pytest.raises(DataValidationError, match=r"BAD.csv: line 9 of the file, column 'label': label 2.0 \(1 such "
                                                  r"labels, values \[2.0\]\); expected 0 or 1"):
        load_tab(tmp_path, "BAD")
    with pytest.raises(DataValidationError, match="TAB folder not found"):
        load_tab(tmp_path / "nope", "TOY")


# ----------------------------------------------------------------------------------------------------- real data


def test_real_nab_all_series():
    root = shared_path("data", "NAB")
    keys = nab_series(root)
    assert len(keys) == 58
    records = {key: load_nab(root, key) for key in keys}
    assert sum(r.meta["n_rows"] for r in records.values()) == 365_558  # as data/README.md states
    assert sum(r.meta["n_windows"] for r in records.values()) == 116
    assert sum(int(r.test_labels.sum()) + r.meta["train_anomalies"] for r in records.values()) == 33_495
    taxi = records["realKnownCause/nyc_taxi.csv"]
    assert (taxi.meta["n_rows"], taxi.meta["n_windows"], int(taxi.test_labels.sum())) == (10_320, 5, 1_035)
    assert taxi.train.shape == (1_548, 1) and taxi.test.shape == (8_772, 1) and taxi.meta["train_anomalies"] == 0
    assert taxi.meta["nab_probationary_rows"] == 750


def test_real_ucr_files():
    root = shared_path("data", "UCR")
    files = ucr_series(root)
    assert [parse_ucr_name(f).id for f in files] == [135, 136, 137, 138, 500]
    lengths = {}
    for name in files:
        record = load_ucr(root, name)
        facts = parse_ucr_name(name)
        lengths[facts.id] = record.meta["n_values"]
        assert 7_500 <= record.meta["n_values"] <= 40_000
        assert len(record.train) == facts.train_end
        positions = np.flatnonzero(record.test_labels) + facts.train_end  # 0-based positions in the whole series
        assert positions.tolist() == list(range(facts.anomaly_start - 1, facts.anomaly_end))
    assert lengths == {135: 7_501, 136: 7_500, 137: 7_500, 138: 7_500, 500: 40_000}
