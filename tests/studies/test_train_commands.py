"""The recipes' training commands as data (hybrid_tevatron.studies.train_commands): the templates, the settings
from the environment, train_paper.sh's launch over processes and its errors."""

import pytest

from hybrid_tevatron.studies.budget import Budget
from hybrid_tevatron.studies.train_commands import CommandError, expand, image_text_command, paper_command


def test_expand_fills_words_and_lists():
    assert expand("--a {x} --b {xs...} {none...} --c {x}/sub", {"x": "v w", "xs": [1, "2"], "none": []}) == [
        "--a", "v w", "--b", "1", "2", "--c", "v w/sub"]


def test_budget_flags():
    argv = Budget(model="m", steps="7").train_argv(["en=d/en.jsonl"], ["en"], "hybrid", 3, "out",
                                                   ["--source_weights", "a=1"])
    assert argv[:10] == ["--model_name_or_path", "m", "--pooling", "mean", "--normalize", "--temperature", "0.01",
                         "--query_prefix", "query: ", "--passage_prefix"]
    assert argv[argv.index("--train_files"):argv.index("--regime")] == [
        "--train_files", "en=d/en.jsonl", "--source_weights", "a=1", "--languages", "en"]
    assert argv[-13:] == ["--learning_rate", "3e-5", "--warmup_ratio", "0.1", "--seed", "3", "--dataloader_drop_last",
                          "--save_strategy", "no", "--logging_steps", "10", "--report_to", "none"]
    assert argv[argv.index("--max_steps") + 1] == "7"


def test_image_text_command_from_the_environment():
    argv = image_text_command("/o", {"TOWER": "t", "BATCH": "8", "LR": ""})
    assert argv[:7] == ["hybrid_tevatron.images.train", "--image_data", "/o/data/flickr", "--image_index",
                        "/o/index/flickr", "--image_tower", "t"]
    assert argv[argv.index("--per_device_train_batch_size") + 1] == "8" and "5e-5" in argv  # empty LR: the default
    assert argv[-3:] == ["--output_dir", "/o/model", "--overwrite_output_dir"]
    with pytest.raises(CommandError, match="TOWER is not set"):
        image_text_command("/o", {})


@pytest.fixture
def train_dir(tmp_path):
    for lang in ("en", "de"):
        (tmp_path / f"{lang}.jsonl").write_text("x\n")
    return str(tmp_path)


def test_paper_command_one_process_and_torchrun(train_dir, capsys):
    env = {"LANGS": "en de", "MODEL": "intfloat/multilingual-e5-base"}
    argv = paper_command(train_dir, "out", env, 0)
    assert argv[0] == "hybrid_tevatron.driver.train" and argv[-5:] == [
        "--use_cpu", "--query_prefix", "query: ", "--passage_prefix", "passage: "]
    assert argv[argv.index("--per_device_train_batch_size") + 1] == "100"
    assert "warning: no GPU found" in capsys.readouterr().err
    argv = paper_command(train_dir, "out", {**env, "NNODES": "2", "RDZV_ENDPOINT": "h:1", "BATCH": "96"}, 4,
                         lambda: False)
    assert argv[:12] == ["torch.distributed.run", "--nnodes", "2", "--rdzv_backend", "c10d", "--rdzv_id", "hybrid",
                         "--rdzv_endpoint", "h:1", "--nproc_per_node", "4", "-m"]
    assert argv[argv.index("--per_device_train_batch_size") + 1] == "12" and "--fp16" in argv
    assert argv[-1] == "--negatives_x_device"
    assert "2 node(s) x 4 GPU(s), 12 per process, batch 96" in capsys.readouterr().err


def test_paper_command_errors(train_dir):
    with pytest.raises(CommandError, match=r"/fr.jsonl missing \(run recipes/prepare_mmarco.sh\)"):
        paper_command(train_dir, "out", {"LANGS": "en fr"}, 0)
    with pytest.raises(CommandError, match="BATCH=7 is not divisible by NNODES x NGPUS = 2"):
        paper_command(train_dir, "out", {"LANGS": "en", "BATCH": "7", "NGPUS": "2"}, 0, lambda: True)
    with pytest.raises(CommandError, match="NNODES > 1 needs RDZV_ENDPOINT"):
        paper_command(train_dir, "out", {"LANGS": "en", "NNODES": "2"}, 1, lambda: True)
