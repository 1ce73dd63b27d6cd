"""radlabel: radiology report text -> RadGraph-style graphs -> CheXpert-style labels.

    import radlabel
    df = radlabel.label(reports, schema="chexpert")          # 1 / 0 / -1 / NaN per class + `error`
    g = radlabel.parse("No pneumothorax. Small left effusion.")
    radlabel.Labeler(schema="chestxray14").label_file("in.csv", "out.parquet", jobs=2)

Names are imported lazily so `import radlabel` stays fast (spaCy loads on first use) and never
pulls in torch.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from importlib.abc import MetaPathFinder
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from radlabel.errors import RadlabelError


class _HideTorchFromThinc(MetaPathFinder):
    """thinc (spaCy's ML layer) imports torch whenever it is installed, although radlabel only uses
    spaCy's tokenizer and matchers: that costs ~0.5 GB and seconds in every process and worker.
    This finder makes `import torch` fail only when thinc.compat probes for it; any other import
    of torch (radvision, fusion, user code) is untouched. Set RADLABEL_SPACY_TORCH=1 to let thinc
    see torch (e.g. for spaCy pipelines with PyTorch components in the same process)."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") == "thinc.compat":
                raise ImportError("radlabel keeps torch out of thinc (RADLABEL_SPACY_TORCH=1 allows it)")
            frame = frame.f_back
        return None


if (os.environ.get("RADLABEL_SPACY_TORCH", "") in ("", "0") and "thinc.compat" not in sys.modules
        and "torch" not in sys.modules and not any(isinstance(f, _HideTorchFromThinc) for f in sys.meta_path)):
    sys.meta_path.insert(0, _HideTorchFromThinc())

try:
    __version__ = version("radlabel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# public name -> module that defines it
_LAZY = {
    "label": "radlabel.labeler",
    "Labeler": "radlabel.labeler",
    "to_binary": "radlabel.labeler",
    "parse": "radlabel.pipeline",
    "Pipeline": "radlabel.pipeline",
    "ReportGraph": "radlabel.graph",
    "load_schema": "radlabel.schema",
    "list_schemas": "radlabel.schema",
    "Schema": "radlabel.schema",
    "data_path": "radlabel.io",
    "read_table": "radlabel.io",
    "write_table": "radlabel.io",
}

__all__ = [
    "Labeler", "Pipeline", "RadlabelError", "ReportGraph", "Schema", "__version__", "data_path", "label",
    "list_schemas", "load_schema", "parse", "read_table", "to_binary", "write_table",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at runtime these load on first access
    from radlabel.graph import ReportGraph
    from radlabel.io import data_path, read_table, write_table
    from radlabel.labeler import Labeler, label, to_binary
    from radlabel.pipeline import Pipeline, parse
    from radlabel.schema import Schema, list_schemas, load_schema


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'radlabel' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
