"""CSV exports with ``;`` or tab delimiters and decimal commas read to the same arrays as ``,`` / ``.`` files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fsad.data.record import DataValidationError
from fsad.data.sources.csvfile import CsvFormat, detect_format, read_csv
from fsad.data.sources.psm import load_psm
from fsad.data.sources.swat import load_swat
from fsad.data.sources.telemanom import read_labeled_anomalies

ITRUST_NORMAL = [["", "P1", "P1", "P1", ""], [" Timestamp", "FIT101", "LIT101", " MV101", "Normal/Attack"],
                 [" 28/12/2015 10:00:00 AM", "2.470294", "261.5804", "2", "Normal"],
                 [" 28/12/2015 10:00:01 AM", "2.457163", "261.1879", "2", "Normal"],
                 [" 28/12/2015 10:00:02 AM", "2.439548", "260.9131", "1", "Normal"]]
ITRUST_ATTACK = [[" Timestamp", "FIT101", "LIT101", " MV101", "Normal/Attack"],
                 [" 28/12/2015 10:00:00 AM", "2.427057", "522.8467", "2", "Normal"],
                 [" 28/12/2015 10:00:01 AM", "0", "522.886", "2", "Attack"],
                 [" 28/12/2015 10:00:02 AM", "0.5", "522.8467", "1", "A ttack"]]


def write_rows(path: Path, rows: list[list[str]], sep: str = ",", decimal: str = ".") -> None:
    """Rows joined by ``sep``; every number's ``.`` written as ``decimal`` (a spreadsheet's locale export)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(sep.join(cell.replace(".", decimal) if _number(cell) else cell for cell in row) + "\n"
                            for row in rows))


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_itrust_semicolon_export_with_decimal_commas_loads_like_the_comma_export(tmp_path: Path):
    for folder, sep, decimal in (("comma", ",", "."), ("semicolon", ";", ",")):
        write_rows(tmp_path / folder / "SWaT_Dataset_Normal_v1.csv", ITRUST_NORMAL, sep, decimal)
        write_rows(tmp_path / folder / "SWaT_Dataset_Attack_v0.csv", ITRUST_ATTACK, sep, decimal)
    assert "261,5804;2;Normal" in (tmp_path / "semicolon" / "SWaT_Dataset_Normal_v1.csv").read_text()
    comma = load_swat(tmp_path / "comma", layout="itrust")
    semicolon = load_swat(tmp_path / "semicolon", layout="itrust")
    np.testing.assert_array_equal(semicolon.train, comma.train)
    np.testing.assert_array_equal(semicolon.test, comma.test)
    np.testing.assert_array_equal(semicolon.test_labels, comma.test_labels)
    assert semicolon.channel_names == comma.channel_names == ["FIT101", "LIT101", "MV101"]
    np.testing.assert_allclose(semicolon.train[:, 1], [261.5804, 261.1879, 260.9131], rtol=1e-7)
    assert semicolon.test_labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize("sep, decimal", [(";", ","), (";", "."), ("\t", "."), ("\t", ",")])
def test_psm_in_every_delimiter_and_decimal_mark(tmp_path: Path, sep: str, decimal: str):
    header = ["timestamp_(min)", "feature_0", "feature_1"]
    train = [header] + [[str(60.0 * t), f"{0.25 * t:.2f}", f"{1000.5 + t}"] for t in range(5)]
    test = [header] + [[str(60.0 * t), "1.5", f"{-2.75 * t:.2f}"] for t in range(3)]
    labels = [["timestamp_(min)", "label"], ["0.0", "0"], ["60.0", "1"], ["120.0", "0"]]
    for folder, s, d in (("reference", ",", "."), ("export", sep, decimal)):
        for name, rows in (("train.csv", train), ("test.csv", test), ("test_label.csv", labels)):
            write_rows(tmp_path / folder / name, rows, s, d)
    assert detect_format(tmp_path / "export" / "train.csv") == CsvFormat(sep, decimal)
    reference, export = load_psm(tmp_path / "reference"), load_psm(tmp_path / "export")
    np.testing.assert_array_equal(export.train, reference.train)
    np.testing.assert_array_equal(export.test, reference.test)
    np.testing.assert_array_equal(export.test_labels, reference.test_labels)
    assert export.train[4].tolist() == [1.0, 1004.5] and export.channel_names == ["feature_0", "feature_1"]


def test_header_read_as_one_column_says_the_file_looks_semicolon_separated(tmp_path: Path):
    path = tmp_path / "x.csv"
    write_rows(path, [["Timestamp", "FIT101", "Normal/Attack"], ["t0", "2.5", "Normal"]], ";", ",")
    with pytest.raises(DataValidationError) as err:
        read_csv(path, sep=",")
    assert str(err.value) == (f"{path}: the header parses as one column 'Timestamp;FIT101;Normal/Attack' but looks "
                              "';'-separated; expected columns separated by ',', ';' or a tab (read with sep=',')")


def test_telemanom_labels_file_with_semicolons(tmp_path: Path):
    path = tmp_path / "labeled_anomalies.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"])
        writer.writerow(["M-1", "MSL", "[[2, 4], [7, 7]]", "[point, point]", "10"])
        writer.writerow(["M-2", "MSL", "[[0, 1]]", "[contextual]", "5"])
    rows = read_labeled_anomalies(path)
    assert [(r.chan_id, r.sequences, r.num_values, r.line) for r in rows] == [
        ("M-1", ((2, 4), (7, 7)), 10, 2), ("M-2", ((0, 1),), 5, 3)]
