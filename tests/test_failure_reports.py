"""Nothing silently wrong (issue 27): a data report lists its problems, an interrupt is one line however early it
comes, an interrupted evaluation says what was kept, atomic writes get a plain write's permissions, and the studies'
files give one ``error:`` line.

The commands run as users run them (``python -m ...`` as processes, signals sent to real processes) with the tiny
local model; each case asserts the message, the exit status and that nothing half-written is left.
"""

import json
import re
import subprocess
import sys

import pytest
from conftest import recipe_env
from test_locks_and_records import hidden, one_error

PY = sys.executable


def _record(qid: str) -> str:
    return json.dumps({"query_id": qid, "query": f"question {qid}", "positive_passages": [{"docid": f"d{qid}",
                       "text": f"passage {qid}"}], "negative_passages": [{"docid": "dx", "text": "other"}]})


# ------------------------------------------------------------------------------------------------ data reports
@pytest.mark.parametrize("bad_lines", [2, 14])
def test_data_report_lists_its_errors_capped(tiny_model_dir, tmp_path, bad_lines):
    """An empty language file and malformed lines in the other: the report's head, then its entries with file and
    line, at most 10 of them and a count of the rest."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "en.jsonl").write_text("", encoding="utf-8")
    lines = [_record("q1")] + ["{oops"] * bad_lines
    (data / "de.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([PY, "-m", "hybrid_tevatron.driver.train", "--model_name_or_path", tiny_model_dir,
                           "--train_files", str(data), "--output_dir", str(out), "--per_device_train_batch_size", "2",
                           "--max_steps", "1", "--use_cpu", "--report_to", "none"],
                          capture_output=True, text=True, timeout=600, env=recipe_env(), cwd=tmp_path)
    head = one_error(proc)
    count = int(re.fullmatch(r"error: source 'data': (\d+) data errors:", head)[1])
    assert count == bad_lines + 2  # + the empty file, + q1 missing in en
    listed = proc.stderr.split(head + "\n", 1)[1].splitlines()
    entries = [line for line in listed if line.startswith("  - ")]
    assert len(entries) == min(count, 10), proc.stderr[-3000:]
    assert entries[0] == (f"  - {data}/de.jsonl:2: malformed JSON (Expecting property name enclosed in double "
                          "quotes at column 2)")
    assert f"  - {data}/en.jsonl: empty (no records) for language 'en' of source 'data'" in entries or count > 10
    more = [line for line in listed if line.startswith("  ... and ")]
    assert more == ([f"  ... and {count - 10} more"] if count > 10 else []), proc.stderr[-3000:]
    assert not out.exists() and hidden(tmp_path) == []


def test_message_text_caps_lists_only():
    from hybrid_tevatron.errors import HybridTevatronError, message_text

    assert message_text("one line") == "one line"
    assert message_text(ValueError("first\nsecond")) == "first"  # not ours: its first line
    err = HybridTevatronError("3 problems:\n" + "\n".join(f"  - {i}" for i in range(12)))
    assert message_text(err).splitlines() == ["3 problems:", *[f"  - {i}" for i in range(10)], "  ... and 2 more"]
