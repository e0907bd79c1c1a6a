"""2CR-style expected-scores checker: snapshot -> YAML -> OK / OKish / FAIL / MISSING."""

import json

import pytest
import yaml
from helpers import exit_line

from hybrid_tevatron.studies import check_expected as ce

RESULTS = {
    "meta": {"steps": 200},
    "xquad-r": {
        "hybrid": {"multi.map": {"mean": 0.6, "std": 0.004, "n": 3, "values": [0.596, 0.6, 0.604]},
                   "rank_distance": {"mean": 300.0, "std": 10.0, "n": 3}},
        "zero-shot": {"multi.map": 0.5, "rank_distance": 400.0},
    },
}


def test_snapshot_tolerances_and_selection():
    rows = ce.snapshot(RESULTS, ["xquad-r/*/multi.map", "xquad-r/*/rank_distance"], dict(ce.DEFAULTS, ok_rel=0.01))
    assert ce.snapshot({"a": {"rank_distance": 400.0}}, ["*"])[0] == {"id": "a/rank_distance", "expected": 400.0,
                                                                          "ok": 8.0, "okish": 20.0}  # 2 % / 5 %
    by_id = {r["id"]: r for r in rows}
    assert list(by_id) == ["xquad-r/hybrid/multi.map", "xquad-r/hybrid/rank_distance",
                           "xquad-r/zero-shot/multi.map", "xquad-r/zero-shot/rank_distance"]
    assert by_id["xquad-r/hybrid/multi.map"] == {"id": "xquad-r/hybrid/multi.map", "expected": 0.6, "ok": 0.005,
                                                 "okish": 0.02, "n": 3, "std": 0.004}
    assert by_id["xquad-r/hybrid/rank_distance"]["ok"] == 10.0  # max(1% of 300, 1 std)
    assert by_id["xquad-r/hybrid/rank_distance"]["okish"] == 30.0  # max(5% of 300, 3 std)
    assert by_id["xquad-r/zero-shot/rank_distance"]["ok"] == 4.0  # 1% of 400, no std
    assert by_id["xquad-r/zero-shot/multi.map"]["ok"] == 0.005 and "std" not in by_id["xquad-r/zero-shot/multi.map"]
    with pytest.raises(ce.ExpectedError, match="match nothing.*mlqa-r"):
        ce.snapshot(RESULTS, ["mlqa-r/*"])


def test_write_then_check_statuses(tmp_path, capsys):
    res = tmp_path / "summary.json"
    res.write_text(json.dumps(RESULTS))
    exp = tmp_path / "expected.yaml"
    assert ce.main(["--write", str(exp), "--results", str(res), "--select", "xquad-r/*/multi.map",
                    "--meta", "command=bash recipes/reproduce.sh"]) == 0
    doc = ce.load_expected(str(exp))
    assert doc["meta"] == {"command": "bash recipes/reproduce.sh"} and doc["results"] == str(res)
    assert ce.main([str(exp)]) == 0  # a run checks OK against its own snapshot
    assert capsys.readouterr().out.count(" OK\n") == 2

    moved = json.loads(json.dumps(RESULTS))
    moved["xquad-r"]["hybrid"]["multi.map"]["mean"] = 0.59  # -0.010: beyond ok (0.005), within okish (0.02)
    moved["xquad-r"]["zero-shot"]["multi.map"] = 0.45  # -0.05: FAIL
    rows = {r["id"]: r for r in ce.check(doc, moved)}
    assert rows["xquad-r/hybrid/multi.map"]["status"] == "OKish"
    assert rows["xquad-r/hybrid/multi.map"]["diff"] == pytest.approx(-0.01)
    assert rows["xquad-r/zero-shot/multi.map"]["status"] == "FAIL"
    res.write_text(json.dumps(moved))
    assert ce.main([str(exp)]) == 1
    out = capsys.readouterr().out
    assert "OKish" in out and "FAIL" in out and "1 OKish, 1 FAIL" in out

    del moved["xquad-r"]["zero-shot"]
    res.write_text(json.dumps(moved))
    assert ce.main([str(exp)]) == 1
    assert "MISSING" in capsys.readouterr().out
    exit_line(ce.main, [str(exp), "--results", str(tmp_path / "nope.json")])
    assert "nope.json: no such results file" in capsys.readouterr().err


def test_malformed_expected_files_name_the_row(tmp_path):
    path = tmp_path / "bad.yaml"
    cases = [
        ({"rows": []}, "non-empty 'rows'"),
        ({"rows": [{"expected": 1, "ok": 0, "okish": 0}]}, r"row 0: needs an 'id'"),
        ({"rows": [{"id": "a/b", "expected": "x", "ok": 0, "okish": 0}]}, r"row 0 \(a/b\): 'expected' must be"),
        ({"rows": [{"id": "a/b", "expected": 1, "ok": 0.1, "okish": 0.05}]}, r"row 0 \(a/b\): need 0 <= ok <= okish"),
        ({"rows": [{"id": "a", "expected": 1, "ok": 0, "okish": 0}, {"id": "a", "expected": 1, "ok": 0, "okish": 0}]},
         r"row 1 \(a\): duplicate id"),
    ]
    for doc, message in cases:
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(ce.ExpectedError, match=message):
            ce.load_expected(str(path))


def test_config_stored_and_matched(tmp_path, monkeypatch, capsys):
    import io

    res = tmp_path / "summary.json"
    res.write_text(json.dumps(RESULTS))
    cfg = {"model": "/tmp/models/me5-small", "steps": "100", "batch": "16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    exp = tmp_path / "expected.yaml"
    assert ce.main(["--write", str(exp), "--results", str(res), "--config", str(tmp_path / "config.json")]) == 0
    assert ce.load_expected(str(exp))["meta"]["config"] == cfg
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(cfg)))
    assert ce.main(["--matches_config", str(exp)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(dict(cfg, steps="50"))))
    assert ce.main(["--matches_config", str(exp)]) == 1
    assert "settings differ (steps)" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(dict(cfg, model="/data/models/me5-small/"))))
    assert ce.main(["--matches_config", str(exp)]) == 0  # the same local model elsewhere
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(dict(cfg, model="intfloat/multilingual-e5-small"))))
    assert ce.main(["--matches_config", str(exp)]) == 1
    assert "settings differ (model)" in capsys.readouterr().err
