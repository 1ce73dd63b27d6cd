import numpy as np
import pandas as pd
from PIL import Image

from radvision.plots import plot_confusion_matrices, plot_roc, plot_training_curves


def _is_png(path):
    with Image.open(path) as im:
        return im.format == "PNG" and im.size[0] > 50


def test_training_curves(tmp_path):
    df = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.6, 0.5], "valid_loss": [0.7, 0.65, 0.6],
                       "mean_auroc": [0.5, 0.6, np.nan], "f1_macro": [0.1, 0.2, 0.3]})
    out = plot_training_curves(df, tmp_path / "plots" / "curves.png")
    assert _is_png(out)


def test_roc_and_confusion_handle_nan_and_single_class(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(30, 3)).astype(float)
    y[:, 1] = 0.0  # one class only: ROC undefined, must not crash
    y[:5, 2] = np.nan
    p = rng.random((30, 3))
    assert _is_png(plot_roc(y, p, ["a", "b", "c"], tmp_path / "roc.png"))
    assert _is_png(plot_confusion_matrices(y, p >= 0.5, ["a", "b", "c"], tmp_path / "cm.png"))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["cm.png", "roc.png"]


def test_confusion_with_a_class_that_has_no_known_label(tmp_path):
    y = np.array([[1.0, np.nan], [0.0, np.nan], [1.0, np.nan]])
    assert _is_png(plot_confusion_matrices(y, np.ones_like(y), ["a", "b"], tmp_path / "cm.png"))


def test_roc_and_confusion_figures_name_their_split(tmp_path, monkeypatch):
    import radvision.plots as plots

    titles = []
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.append(fig.get_suptitle()) or real(fig, path))
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    plot_roc(y, y * 0.8 + 0.1, ["A", "B"], tmp_path / "roc.png", title="test: 4 images")
    plot_confusion_matrices(y, y.astype(int), ["A", "B"], tmp_path / "cm.png", title="test: 4 images")
    assert titles == ["test: 4 images", "test: 4 images"]


def test_class_names_the_font_lacks_are_said_once_not_warned_per_character(tmp_path, monkeypatch, caplog, recwarn):
    from radvision import plots

    monkeypatch.setattr(plots, "_warned_glyphs", False)
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, size=(20, 2)).astype(float), rng.random((20, 2))
    with caplog.at_level("WARNING"):
        assert _is_png(plot_roc(y, p, ["肺炎", "气胸"], tmp_path / "roc.png"))
        assert _is_png(plot_confusion_matrices(y, p >= 0.5, ["肺炎", "气胸"], tmp_path / "cm.png"))
    assert [str(w.message) for w in recwarn if "missing from font" in str(w.message)] == []  # were 16
    assert caplog.text.count("lacks some characters of the class names") == 1


def test_a_concept_vocabulary_draws_the_best_supported_classes_only(tmp_path, monkeypatch):
    from radvision import plots

    titles = []
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.append((fig.get_suptitle(), len(
        [ax for ax in fig.axes if ax.get_title()]))) or real(fig, path))
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random((60, n)) < 0.02).astype(float)
    y[:, 7] = 1.0  # the best-supported classes are drawn whatever their position
    names = [f"C{i:07d}" for i in range(n)]
    plot_roc(y, rng.random((60, n)), names, tmp_path / "roc.png", title="valid: 60 images")
    plot_confusion_matrices(y, rng.random((60, n)) > 0.5, names, tmp_path / "cm.png", title="valid: 60 images")
    note = f"valid: 60 images; the {plots.MAX_PANELS} of {n} classes with the most positives"
    assert titles == [(note, plots.MAX_PANELS), (note, plots.MAX_PANELS)]
    with Image.open(tmp_path / "roc.png") as im:  # was 1091 x 17480 px
        assert im.size[1] < 4000
