from pathlib import Path

import pytest
import yaml

from radvision.config import Config, config_from_dict, load_config, save_config
from radvision.errors import RadvisionError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_file():
    cfg = load_config(None)
    assert isinstance(cfg, Config)
    assert cfg.optim.epochs == 10 and cfg.model.backbone == "resnet18"


def test_yaml_and_overrides(tmp_path):
    p = write(tmp_path, "model:\n  backbone: simple_cnn\noptim:\n  lr: 1e-3\n  epochs: 3\n")
    cfg = load_config(p, ["optim.lr=3e-4", "model.backbone=[resnet18,densenet121]", "data.root=/x",
                          "schedule.patience=null", "data.split.train=0.7", "data.split.test=0.2"])
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string; float fields accept it
    assert cfg.optim.epochs == 3
    assert cfg.model.backbone == ["resnet18", "densenet121"]
    assert cfg.data.root == "/x"
    assert cfg.schedule.patience is None
    assert cfg.data.split == {"train": 0.7, "valid": 0.1, "test": 0.2}


def test_a_list_split_by_the_shell_says_to_quote_it():
    with pytest.raises(RadvisionError, match="shell split at a space: quote the whole override"):
        load_config(None, ["data.classes=[Effusion,", "Cardiomegaly]"])


def test_numeric_looking_string_override_stays_string():
    cfg = load_config(None, ["data.root=2024", "output.run_dir=123"])
    assert cfg.data.root == "2024" and cfg.output.run_dir == "123"
    dated = load_config(None, ["output.run_dir=2024-01-01", "data.classes=[0, 1]", "model.pretrained=2024"])
    assert (dated.output.run_dir, dated.data.classes, dated.model.pretrained) == ("2024-01-01", ["0", "1"], "2024")


def test_text_keys_keep_numbers_and_dates_as_written_in_a_file_and_on_the_command_line(tmp_path):
    p = write(tmp_path, "runtime: {amp: no}\ndata: {root: 2024.10, csv: 0755, classes: [1.50, 2024-01-01]}\n"
                        "output: {run_dir: 12:30}\nmodel: {backbone_lr_mult: 0.5}\nthresholds: {cardinality: 2}\n"
                        "optim: {lr: 1.0e-3}\n")
    cfg = load_config(p)
    assert (cfg.runtime.amp, cfg.data.root, cfg.data.csv, cfg.output.run_dir) == ("no", "2024.10", "0755", "12:30")
    assert cfg.data.classes == ["1.50", "2024-01-01"]
    assert cfg.model.backbone_lr_mult == 0.5 and cfg.thresholds.cardinality == 2.0 and cfg.optim.lr == 1e-3
    over = load_config(p, ["data.root=2024.10", "data.classes=[1.50]", "runtime.amp=no", "data.split.test=0.2",
                           "data.split.train=0.7"])
    assert (over.data.root, over.data.classes, over.runtime.amp) == ("2024.10", ["1.50"], "no")
    assert over.data.split == {"train": 0.7, "valid": 0.1, "test": 0.2}
    for given in ("thresholds.cardinality=true", "model.pretrained=true", "output.run_dir=on", "data.classes=[A, yes]",
                  "data.downsample={on: 0.5}", "model.backbone=[simple_cnn, on]"):
        with pytest.raises(RadvisionError, match="got .*True"):  # not a number, and not a folder called "true"
            load_config(None, [given])
    with pytest.raises(RadvisionError, match="'runtime.amp' is 'off'; choose one of"):
        load_config(None, ["runtime.amp=off"])  # read as written, then checked against the choices


def test_unknown_key_in_yaml_suggests(tmp_path):
    p = write(tmp_path, "optim:\n  lerning_rate: 0.1\n")
    with pytest.raises(RadvisionError, match=r"optim\.lerning_rate") as exc:
        load_config(p)
    assert "valid keys" in str(exc.value)


def test_unknown_key_in_override_suggests():
    with pytest.raises(RadvisionError, match="did you mean epochs"):
        load_config(None, ["optim.epoch=3"])
    with pytest.raises(RadvisionError, match="'model.backbone' must name a backbone"):
        load_config(None, ["model.backbone=[]"])
    with pytest.raises(RadvisionError, match="Unknown config key 'modle'"):
        load_config(None, ["modle.head=mlp"])


def test_wrong_type_names_key_and_type():
    with pytest.raises(RadvisionError, match=r"'optim\.epochs' must be int"):
        load_config(None, ["optim.epochs=two"])
    with pytest.raises(RadvisionError, match=r"'runtime\.amp'"):
        config_from_dict({"runtime": {"amp": True}})
    with pytest.raises(RadvisionError, match="must be bool"):
        config_from_dict({"runtime": {"progress": "yes please"}})


def test_choice_error_lists_valid_values():
    with pytest.raises(RadvisionError, match="did you mean 'mlp'.*linear, mlp, fpn"):
        load_config(None, ["model.head=mpl"])


def test_bad_override_syntax():
    with pytest.raises(RadvisionError, match="dotted.key=value"):
        load_config(None, ["optim.lr"])


def test_in_python_a_later_override_of_a_key_wins():
    """So a list of base overrides can be extended (the CLI refuses a key typed twice)."""
    assert load_config(None, ["optim.lr=0.1", "optim.epochs=2", " optim.lr =0.2"]).optim.lr == 0.2


@pytest.mark.parametrize("override, message", [
    ("cycles.0.epochs=3", r"reaches inside 'cycles', which is a list.*cycles=\[\{epochs: 3\}"),
    ("data.classes.0=Mass", r"reaches inside 'data.classes', which is a list.*data.classes=\[\.\.\.\]"),
    ("optim.lr.x=1", r"goes past 'optim.lr', which holds one value \(float\).*optim.lr=VALUE"),
])
def test_override_keys_that_go_inside_a_list_or_a_value_say_to_give_it_whole(override, message):
    with pytest.raises(RadvisionError, match=message):
        load_config(None, [override])


def test_one_entry_of_a_mapping_field_may_be_overridden_also_when_the_field_may_be_null():
    cfg = load_config(None, ["data.downsample.Effusion=0.5", "loss.class_weights.Effusion=2.0",
                             "data.split.train=0.7", "data.split.test=0.2"])
    assert cfg.data.downsample == {"Effusion": 0.5} and cfg.loss.class_weights == {"Effusion": 2.0}
    assert cfg.data.split["train"] == 0.7


def test_split_fractions_validated():
    with pytest.raises(RadvisionError, match="sum to 1"):
        load_config(None, ["data.split={train: 0.5, valid: 0.1}"])


def test_channels_must_match_model_input():
    with pytest.raises(RadvisionError, match="set both to 1 or both to 3"):
        load_config(None, ["data.channels=3", "model.in_chans=1"])
    assert load_config(None, ["data.channels=1", "model.in_chans=1"]).model.in_chans == 1


def test_cycles_resolve_from_optim():
    cfg = config_from_dict({"optim": {"lr": 0.01, "epochs": 4},
                            "cycles": [{"epochs": 1, "strategy": "frozen"}, {"epochs": 2, "lr": 0.001}]})
    cycles = cfg.resolved_cycles()
    assert [(c.epochs, c.lr, c.strategy) for c in cycles] == [(1, 0.01, "frozen"), (2, 0.001, "full")]
    assert [c.epochs for c in config_from_dict({"optim": {"epochs": 4}}).resolved_cycles()] == [4]
    unset = config_from_dict({"optim": {"epochs": 3}, "cycles": [{"lr": 0.001}, {"epochs": 2}]})
    assert [c.epochs for c in unset.resolved_cycles()] == [3, 2]  # a cycle without epochs: optim.epochs


def test_save_roundtrip(tmp_path):
    cfg = load_config(None, ["model.backbone=[simple_cnn,simple_cnn]", "loss.class_weights={a: 2.0}"])
    out = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert load_config(out) == cfg
    assert yaml.safe_load(out.read_text())["model"]["backbone"] == ["simple_cnn", "simple_cnn"]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_missing_and_invalid_file(tmp_path):
    with pytest.raises(RadvisionError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(RadvisionError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(RadvisionError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(RadvisionError, match=r"not valid YAML at line 2 \(a tab character: indent with spaces\)"):
        load_config(write(tmp_path, "data:\n\tdataset: nih\n"))


def test_a_runs_config_with_a_bad_key_names_the_file(tmp_path):
    from radvision.config import load_run_config

    path = write(tmp_path, "data:\n  foo: 1\n")
    with pytest.raises(RadvisionError, match=rf"^{path}: Unknown config key 'data.foo'"):
        load_run_config(path)


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("model: {backbone: resnet18}\nmodel: {head: mlp}\n", "model", "lines 1 and 2"),  # PyYAML kept the last
        ("optim:\n  lr: 1.0e-3\n  batch_size: 8\n  lr: 3.0e-4\n", "lr", "lines 2 and 4"),
    ],
)
def test_a_key_given_twice_is_named(tmp_path, text, key, lines):
    with pytest.raises(RadvisionError, match=f"key '{key}' twice \\({lines}\\)"):
        load_config(write(tmp_path, text))


def test_yaml_merge_keys_still_work(tmp_path):
    text = "base: &b {backbone: simple_cnn}\nmodel:\n  <<: *b\n  head: mlp\n"
    with pytest.raises(RadvisionError, match="'base'"):  # an unknown section, not a duplicate
        load_config(write(tmp_path, text))


def test_demo_config_is_valid():
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert cfg.model.backbone == "simple_cnn"
    assert sum(c.epochs for c in cfg.resolved_cycles()) <= 2


def test_package_and_config_load_without_torch_or_pandas():
    import subprocess
    import sys

    code = ("import sys, radvision, radvision.config; "
            "radvision.config.check_names_to_train(radvision.config.load_config(None, ['data.transforms=none'])); "
            "assert not {'torch', 'pandas', 'PIL'} & set(sys.modules), 'a heavy module imported'; "
            "assert 'Trainer' in radvision.__all__ and 'load_config' in dir(radvision)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_monitor_min_positives_validated():
    cfg = load_config(None, ["schedule.monitor_min_positives=10", "schedule.monitor_include_any=true"])
    assert cfg.schedule.monitor_min_positives == 10 and cfg.schedule.monitor_include_any is True
    assert load_config(None).schedule.monitor_min_positives == 0
    with pytest.raises(RadvisionError, match="zero or more"):
        load_config(None, ["schedule.monitor_min_positives=-1"])
    with pytest.raises(RadvisionError, match="per-class mean monitor"):
        load_config(None, ["schedule.monitor=loss", "schedule.monitor_min_positives=5"])
    with pytest.raises(RadvisionError, match="monitor_include_any needs"):
        load_config(None, ["schedule.monitor=macro_f1", "schedule.monitor_include_any=true"])


def test_merge_sections_and_updates_before_overrides(tmp_path):
    from radvision.config import merge_sections

    base = {"optim": {"lr": 0.1, "epochs": 3}, "model": {"backbone": "resnet18"}}
    merged = merge_sections(base, {"optim": {"lr": 0.5}, "output": {"run_dir": "x"}})
    assert merged == {"optim": {"lr": 0.5, "epochs": 3}, "model": {"backbone": "resnet18"}, "output": {"run_dir": "x"}}
    assert base["optim"]["lr"] == 0.1  # inputs untouched
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.1\n  epochs: 3\n")
    cfg = load_config(path, ["optim.epochs=7"], updates={"optim": {"lr": 0.5, "epochs": 5}})
    assert (cfg.optim.lr, cfg.optim.epochs) == (0.5, 7)


def test_sampler_choices():
    assert load_config(None).data.sampler == "none"
    assert load_config(None, ["data.sampler=weighted"]).data.sampler == "weighted"
    with pytest.raises(RadvisionError, match="'data.sampler' is 'weigthed' .*choose one of none, weighted"):
        load_config(None, ["data.sampler=weigthed"])


def test_pretrained_accepts_one_value_per_backbone():
    cfg = load_config(None, ["model.backbone=[simple_cnn, resnet18]", "model.pretrained=[null, r18.pth]"])
    assert cfg.model.pretrained == [None, "r18.pth"]
    assert load_config(None, ["model.pretrained=imagenet"]).model.pretrained == "imagenet"
    with pytest.raises(RadvisionError, match="'model.pretrained' lists 2 values for 1 backbone"):
        load_config(None, ["model.backbone=simple_cnn", "model.pretrained=[null, r18.pth]"])


def test_soft_f1_with_auto_pos_weight_fails_when_loading():
    with pytest.raises(RadvisionError, match="soft_f1.*loss.pos_weight 'auto'"):
        load_config(None, ["loss.name=soft_f1", "loss.pos_weight=auto"])
    assert load_config(None, ["loss.name=f1_bce", "loss.pos_weight=auto"]).loss.name == "f1_bce"


def test_top_k_must_be_positive_and_nih_sample_warns_about_an_unused_root(caplog):
    from radvision.config import load_config
    from radvision.errors import RadvisionError

    with pytest.raises(RadvisionError, match="'thresholds.top_k' must be 1 or more"):
        load_config(None, ["thresholds.top_k=0"])
    with caplog.at_level("WARNING"):
        load_config(None, ["data.dataset=nih_sample", "data.root=/data/nih"])
    assert "data.root is not used by data.dataset 'nih_sample'" in caplog.text
    with caplog.at_level("WARNING"):
        load_config(None, ["data.dataset=folder", "data.root=/data/x", "data.csv=labels.csv"])
    assert "data.csv is not used by data.dataset 'folder'" in caplog.text


@pytest.mark.parametrize("overrides, message", [
    (["thresholds.min_labels=-1"], "'thresholds.min_labels' must be zero or more"),
    (["thresholds.min_labels=2", "thresholds.top_k=1"], "min_labels (2) is more than thresholds.top_k (1)"),
    (["thresholds.cardinality=most"], "must be 'train', a number of labels per image, or null"),
    (["thresholds.cardinality=true"], "must be 'train', a number of labels per image, or null, got True"),
    (["thresholds.cardinality=-0.5"], "'thresholds.cardinality' must be a finite number, zero or more"),
    (["thresholds.cardinality=.inf"], "'thresholds.cardinality' must be a finite number, zero or more, got inf"),
])
def test_decision_rule_keys_are_checked(overrides, message):
    with pytest.raises(RadvisionError) as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_focal_alpha_loads():
    assert load_config(None).loss.alpha == 0.25
    assert load_config(None, ["loss.alpha=null"]).loss.alpha is None
    assert load_config(None, ["loss.alpha=0.5"]).loss.alpha == 0.5


def test_decision_rule_keys_load():
    t = load_config(None, ["thresholds.min_labels=1", "thresholds.top_k=3", "thresholds.cardinality=train"]).thresholds
    assert (t.min_labels, t.top_k, t.cardinality) == (1, 3, "train")
    assert load_config(None, ["thresholds.cardinality=1.5"]).thresholds.cardinality == 1.5


@pytest.mark.parametrize("override, message", [
    ("schedule.plateau_factor=2", "'schedule.plateau_factor' must be between 0 and 1 (exclusive), got 2.0"),
    ("schedule.plateau_factor=0", "'schedule.plateau_factor' must be between 0 and 1"),
    ("schedule.patience=0", "'schedule.patience' must be 1 or more (or null: off), got 0"),
    ("schedule.plateau_patience=-1", "'schedule.plateau_patience' must be zero or more"),
    ("schedule.min_delta=-1", "'schedule.min_delta' must be a finite number, zero or more"),
    ("schedule.min_delta=.nan", "'schedule.min_delta' must be a finite number, zero or more, got nan"),
    ("optim.momentum=5", "'optim.momentum' must be at least 0 and below 1"),
    ("optim.weight_decay=-0.1", "'optim.weight_decay' must be a finite number, zero or more"),
    ("optim.weight_decay=.inf", "'optim.weight_decay' must be a finite number, zero or more, got inf"),
    ("optim.lr=nan", "'optim.lr' must be a positive number, got nan"),
    ("optim.lr=.inf", "'optim.lr' must be a positive number, got inf"),
    ("data.split={train: .nan, valid: 0.5}", "'data.split' fractions must be non-negative and sum to 1"),
    ("optim.num_workers=-2", "'optim.num_workers' must be zero or more"),
    ("loss.gamma=.nan", "'loss.gamma' must be a number >= 0, got nan"),
    ("cycles=[{epochs: 1, lr: -1}]", "'cycles[0].lr' must be a positive number"),
    ("cycles=[{epochs: 1, lr: .inf}]", "'cycles[0].lr' must be a positive number"),
    ("model.backbone_lr_mult=-1", "'model.backbone_lr_mult' must be 'auto' or a finite number, zero or more, got -1.0"),
    ("loss.class_weights={A: .inf}", "'loss.class_weights' gives 'A' the weight inf"),
    ("cycles=[{epochs: 1, class_weights: {A: -2}}]", "'cycles[0].class_weights' gives 'A' the weight -2.0"),
    ("loss.class_weights=autox", "'loss.class_weights' must be 'auto', a mapping of class: weight, or null"),
    ("loss.alpha=1.5", "'loss.alpha' must be between 0 and 1 (or null: no weighting), got 1.5"),
    ("runtime.seed=-1", "'runtime.seed' must be from 0 to 4294967285 (each epoch seeds with seed + epoch"),
    ("runtime.seed=4294967295", "'runtime.seed' must be from 0 to 4294967285"),
])
def test_numbers_and_weights_are_range_checked_naming_their_key(override, message):
    with pytest.raises(RadvisionError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_the_largest_seed_leaves_room_for_every_epoch():
    assert load_config(None, ["optim.epochs=3", f"runtime.seed={2**32 - 4}"]).runtime.seed == 2**32 - 4
    with pytest.raises(RadvisionError, match="'runtime.seed' must be from 0 to 4294967290"):
        load_config(None, ["cycles=[{epochs: 2}, {epochs: 3}]", f"runtime.seed={2**32 - 4}"])


def test_model_hidden_is_checked_and_a_head_that_ignores_it_says_so(caplog):
    with pytest.raises(RadvisionError, match="'model.hidden' must list layer sizes of 1 or more, got \\[0\\]"):
        load_config(None, ["model.head=mlp", "model.hidden=[0]"])
    load_config(None, ["model.hidden=[64]"])
    assert "model.hidden is used by model.head mlp only; head 'linear' ignores it" in caplog.text


def test_python_api_misuse_gets_a_sentence(tmp_path):
    with pytest.raises(RadvisionError, match="overrides must be a list of 'key=value' strings"):
        load_config(None, "optim.epochs=2")
    with pytest.raises(RadvisionError, match="takes the path of a YAML file, not a dict"):
        load_config({"optim": {"epochs": 2}})
    from radvision.train import Trainer

    with pytest.raises(RadvisionError, match="Trainer needs a radvision Config, not a dict"):
        Trainer({"optim": {"epochs": 2}})
    assert load_config(None, updates={"optim": {"epochs": 2}}).optim.epochs == 2


def test_choice_hints_ignore_case():
    with pytest.raises(RadvisionError, match="is 'MLP' \\(did you mean 'mlp'\\?\\)"):
        load_config(None, ["model.head=MLP"])


@pytest.mark.parametrize("override, suggestion", [
    ("optim.lerning_rate=1", "did you mean lr?"), ("optim.learning_rate=1", "did you mean lr?"),
    ("optim.num_epochs=3", "did you mean epochs?"), ("data.img_size=64", "did you mean image_size?"),
    # a key's own tail, or the same key in another section
    ("data.top_k=5", "did you mean concept_top_k, thresholds.top_k?"), ("optim.patience=3", "schedule.patience"),
])
def test_keys_named_as_other_tools_name_them_get_a_suggestion(override, suggestion):
    with pytest.raises(RadvisionError, match=suggestion):
        load_config(None, [override])


def test_in_chans_follows_data_channels_and_rechecks_stay_quiet(caplog):
    assert load_config(None, ["data.channels=1"]).model.in_chans == 1
    assert load_config(None, []).model.in_chans == 3
    with pytest.raises(RadvisionError, match=r"data.channels \(1\) and model.in_chans \(3\) differ"):
        load_config(None, ["data.channels=1", "model.in_chans=3"])
    values = {"model": {"head": "linear", "hidden": [8]}}
    with caplog.at_level("WARNING"):
        config_from_dict(values, warn=False)  # the trainer re-checks a config it saves: no second warning
    assert "model.hidden" not in caplog.text
    with caplog.at_level("WARNING"):
        config_from_dict(values)
    assert "model.hidden is used by model.head mlp only" in caplog.text


@pytest.mark.parametrize("override, message", [
    ("model.dropout=-0.1", r"'model.dropout' must be at least 0 and below 1"),
    ("model.dropout=1.0", r"'model.dropout' must be at least 0 and below 1"),
    ("model.hidden=[]", r"'model.hidden' must list the mlp head's layer sizes .*or be null .*got \[\]"),
    ("model.pretrained=imagnet", r"'model.pretrained' value 'imagnet' is not 'imagenet'.*did you mean 'imagenet'"),
    ("model.pretrained=[Imagenet]", r"'model.pretrained' value 'Imagenet'"),
])
def test_model_values_that_would_fail_the_model_build_are_named_before_training(override, message):
    from radvision.config import check_names_to_train

    with pytest.raises(RadvisionError, match=message):  # at load, or (names) before a fresh run reads images
        check_names_to_train(load_config(None, ["model.head=mlp", override]))
    assert load_config(None, ["model.pretrained=weights/r18.pth", "model.head=mlp", "model.hidden=[8]"])
    assert load_config(None, ["model.head=mlp"]).model.hidden is None  # the head's default [4096, 4096]


def test_a_runs_own_config_may_name_a_bare_weight_file_that_is_not_here(tmp_path):
    from radvision.config import config_from_dict, load_run_config

    (tmp_path / "config.yaml").write_text("model: {pretrained: chexnet}\n")  # existed where the run trained
    assert load_run_config(tmp_path / "config.yaml").model.pretrained == "chexnet"
    assert config_from_dict({"model": {"pretrained": "chexnet"}}).model.pretrained == "chexnet"
    assert load_config(tmp_path / "config.yaml").model.pretrained == "chexnet"  # e.g. to --resume the run


@pytest.mark.parametrize("value, message", [
    ("defualt", r"Unknown transform preset 'defualt' \(data.transforms\) \(did you mean 'default'\?\)"),
    ("default+equalise", r"Unknown transform option 'equalise' in 'default\+equalise' \(data.transforms\)"),
    ("default+", r"option '' in 'default\+'.*valid choices: default, chexpert_study, nih_study, none"),
])
def test_a_bad_transforms_name_is_refused_before_training(value, message):
    from radvision.config import check_names_to_train

    with pytest.raises(RadvisionError, match=message):
        check_names_to_train(load_config(None, [f"data.transforms={value}"]))


def test_a_runs_own_config_keeps_a_transforms_name_of_its_own(tmp_path):
    from radvision.config import load_run_config

    (tmp_path / "config.yaml").write_text("data: {transforms: my_own_aug}\n")  # fit() on own datasets, older runs
    assert load_run_config(tmp_path / "config.yaml").data.transforms == "my_own_aug"


def test_u_multiclass_policy_loads_and_refuses_losses_made_for_sigmoids():
    from radvision.config import outputs_per_class

    cfg = load_config(None, ["data.dataset=chexpert", "data.policy=U-MultiClass", "loss.class_weights=auto"])
    assert cfg.data.policy == "U-MultiClass" and outputs_per_class(cfg) == 3
    assert outputs_per_class(load_config(None, ["data.policy=U-Ignore"])) == 1
    assert load_config(None, ["data.policy=U-MultiClass", "loss.pos_weight=auto"]).loss.pos_weight == "auto"
    for name in ("focal", "soft_f1", "weighted_bce", "f1_bce"):
        with pytest.raises(RadvisionError, match=f"U-MultiClass.*'{name}'.*loss.name=bce.*U-Ones, U-Zeros, U-Ignore"):
            load_config(None, ["data.policy=U-MultiClass", f"loss.name={name}"])
    with pytest.raises(RadvisionError, match="U-Ones, U-Zeros, U-Ignore, U-MultiClass"):
        load_config(None, ["data.policy=U-Multi"])
