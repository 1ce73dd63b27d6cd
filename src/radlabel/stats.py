"""Corpus analysis in the style of the CheXpert Plus / RadGraph study.

- report similarity |A∩B| / max(|A|,|B|) between a report's FINDINGS and IMPRESSION, over three
  kinds of items: noun phrases, verbs and graph entities;
- frequency tables (and bar plots) of graph entities, verbs and noun phrases;
- class prevalence (counts of 1 / 0 / -1 / blank), label cardinality and density.

Noun phrases and verbs come from spaCy's `en_core_web_sm` tagger when that model is installed;
otherwise (the default, since models cannot be downloaded everywhere) from a rule-based fallback:
spaCy's blank English tokenizer, a lexicon of report verbs with their inflections plus "-ed/-ing"
words after an auxiliary, and noun phrases as maximal runs of content words between stop words,
verbs and punctuation. The fallback is cruder than a tagger but needs no model and is fast.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from radlabel.errors import RadlabelError
from radlabel.evaluate import label_values
from radlabel.io import (
    atomic_write_text,
    check_folder_writable,
    estimated_rows,
    iter_table,
    missing_column_error,
    parquet_rows,
    read_label_table,
    write_table,
)
from radlabel.labeler import MAX_CHARS

logger = logging.getLogger(__name__)

# Base forms of verbs that radiology reports use; inflections are generated below.
_VERB_BASES = """
appear demonstrate show suggest represent reflect remain persist resolve improve worsen increase decrease
develop extend project compare see identify visualize evaluate exclude consider recommend
correlate favor indicate obscure enlarge elevate displace compress overlie terminate
insert remove advance retract stabilize consist involve surround cause
""".split()
# Also nouns in reports ("in place", "no change", "collapse"): only their -ed / -ing forms count.
_VERB_OR_NOUN = "place position change course measure note increase decrease collapse".split()
_IRREGULAR = {"seen", "shown", "unchanged", "noted", "found"}
_AUX = {"is", "are", "was", "were", "be", "been", "being", "has", "have", "had"}
_STOP = set("""
a an the this that these those there here it its of in on at to for from with without within by as into onto over under
above below beneath behind along across through throughout around near via per upon about between
and or but nor versus vs than then also which who whom whose what when where while is are was were be been being
has have had do does did no not nor any some all both each either neither other another may might can could
should would will shall must possibly probably likely unlikely perhaps previously again otherwise still
now currently since compared prior new old interval very more less most least few much many
""".split())
# Predicate adjectives that end a run but are not noun phrases by themselves.
_ADJ_ONLY = set("""
normal clear stable unremarkable unchanged intact negative positive present absent seen visible noted
enlarged limits small large mild moderate severe minimal acute chronic left right bilateral
""".split())


def _inflections(base: str) -> set[str]:
    stem = base[:-1] if base.endswith("e") else base
    ed = base + "d" if base.endswith("e") else (base[:-1] + "ied" if base.endswith("y") else base + "ed")
    s = base + "es" if base.endswith(("s", "x", "sh", "ch")) else (base[:-1] + "ies" if base.endswith("y") else base + "s")
    return {base, s, ed, stem + "ing"}


VERBS = frozenset(set().union(*(_inflections(b) for b in _VERB_BASES))
                  | {f for b in _VERB_OR_NOUN for f in _inflections(b) if f.endswith(("ed", "ing"))}
                  | _IRREGULAR)


@lru_cache(maxsize=1)
def _tokenizer():
    import spacy

    return spacy.blank("en").tokenizer


@lru_cache(maxsize=1)
def _tagger():
    """`en_core_web_sm` when installed (never downloaded), else None for the rule-based fallback."""
    import spacy

    if spacy.util.is_package("en_core_web_sm"):
        logger.info("using en_core_web_sm for noun phrases and verbs")
        return spacy.load("en_core_web_sm", disable=["ner", "lemmatizer"])
    logger.debug("en_core_web_sm not installed: rule-based noun phrases and verbs")
    return None


def noun_phrases_and_verbs(text: str, use_model: bool = True) -> tuple[set[str], set[str]]:
    """Lower-cased noun phrases and verbs of a text (see the module docstring for the method)."""
    nlp = _tagger() if use_model else None
    if nlp is not None:
        doc = nlp(text)
        nps = {" ".join(t.lower_ for t in nc if t.lower_ not in _STOP) for nc in doc.noun_chunks}
        verbs = {t.lower_ for t in doc if t.pos_ == "VERB"}
        return {n for n in nps if n}, verbs
    tokens = [t.lower_ for t in _tokenizer()(text)]
    verbs: set[str] = set()
    nps: set[str] = set()
    run: list[str] = []

    def close_run() -> None:
        while run and run[-1] in _ADJ_ONLY:
            run.pop()
        if run:
            nps.add(" ".join(run))
        run.clear()

    prev = ""
    for tok in tokens:
        is_verb = tok in VERBS or (prev in _AUX and len(tok) > 4 and tok.endswith(("ed", "ing")))
        if is_verb:
            verbs.add(tok)
            close_run()
        elif tok in _STOP or not tok.isalpha():
            close_run()
        else:
            run.append(tok)
        prev = tok
    close_run()
    return nps, verbs


def similarity(a: Iterable[Any], b: Iterable[Any]) -> float:
    """|A∩B| / max(|A|,|B|) of two item sets; NaN when both are empty (nothing to compare)."""
    a, b = set(a), set(b)
    if not a and not b:
        return float("nan")
    return len(a & b) / max(len(a), len(b))


def entity_texts(graph, sections: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(lower-cased text, RadGraph label) of a graph's entities, optionally from some sections only."""
    out = []
    for e in graph.entities:
        if sections is not None and getattr(e, "section", None) not in sections:
            continue
        text = e.tokens if isinstance(e.tokens, str) else " ".join(e.tokens)
        out.append((text.lower(), str(e.label)))
    return out


def _section_texts(text: str) -> dict[str, str]:
    from radlabel.sections import find_sections

    parts: dict[str, list[str]] = {}
    for s in find_sections(text):
        parts.setdefault(s.name, []).append(text[s.start:s.end])
    return {k: " ".join(v) for k, v in parts.items()}


def section_similarity(text: str, graph=None) -> dict[str, float]:
    """FINDINGS-vs-IMPRESSION similarity of one report over noun phrases, verbs and (given its graph)
    entities; NaN for each kind when the report lacks one of the two sections."""
    sections = _section_texts(text)
    f, i = sections.get("findings", ""), sections.get("impression", "")
    if not f.strip() or not i.strip():
        return {"noun_phrases": float("nan"), "verbs": float("nan"), "entities": float("nan")}
    np_f, v_f = noun_phrases_and_verbs(f)
    np_i, v_i = noun_phrases_and_verbs(i)
    out = {"noun_phrases": similarity(np_f, np_i), "verbs": similarity(v_f, v_i)}
    if graph is not None:
        out["entities"] = similarity({t for t, _ in entity_texts(graph, ("findings",))},
                                     {t for t, _ in entity_texts(graph, ("impression",))})
    else:
        out["entities"] = float("nan")
    return out


def frequency_table(counter: Counter, columns: Sequence[str]) -> pd.DataFrame:
    """A Counter as a table sorted by count, with its share of all counted items."""
    rows = [(*(k if isinstance(k, tuple) else (k,)), n) for k, n in counter.most_common()]
    df = pd.DataFrame(rows, columns=[*columns, "count"])
    total = df["count"].sum()
    df["share"] = df["count"] / total if total else 0.0
    return df


def prevalence(labels: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Per class: counts of 1 / 0 / -1 / blank and the share of reports labelled 1."""
    rows = []
    values = label_values(labels, classes, "The labels")
    for j, c in enumerate(classes):
        v = values[:, j]
        rows.append({"class": c, "positive": int((v == 1).sum()), "negative": int((v == 0).sum()),
                     "uncertain": int((v == -1).sum()), "blank": int(np.isnan(v).sum()),
                     "prevalence": float((v == 1).mean()) if len(v) else float("nan")})
    return pd.DataFrame(rows)


def label_cardinality(labels: pd.DataFrame, classes: Sequence[str], uncertain_as_positive: bool = False
                      ) -> tuple[float, float]:
    """(cardinality, density): mean positive labels per report, and that divided by the class count."""
    if not len(labels) or not classes:
        return float("nan"), float("nan")
    v = label_values(labels, classes, "The labels")
    positive = (v == 1) | ((v == -1) if uncertain_as_positive else False)
    card = float(positive.sum(axis=1).mean())
    return card, card / len(classes)


def bar_plot(table: pd.DataFrame, label_column: str, value_column: str, path: str | os.PathLike,
             title: str, top: int = 30) -> Path:
    """Horizontal bar plot of the top rows of a table, saved as PNG (atomically, no pyplot state)."""
    from matplotlib.figure import Figure

    data = table.head(top)
    fig = Figure(figsize=(7, 0.25 * max(len(data), 4) + 1))
    ax = fig.add_subplot()
    labels = data[label_column].astype(str).tolist()[::-1]
    ax.barh(labels, data[value_column].tolist()[::-1], color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(value_column)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class StatsResult:
    """Tables (name -> DataFrame) and scalar summary of a corpus."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def corpus_stats(input: str | os.PathLike | pd.DataFrame, text_column: str = "report",
                 labels: str | os.PathLike | pd.DataFrame | None = None, schema: Any = "chexpert",
                 limit: int | None = None, output_dir: str | os.PathLike | None = None, plots: bool = False,
                 top: int = 30, progress: bool = False, chunksize: int = 5_000) -> StatsResult:
    """Statistics of a report corpus (file or DataFrame), streamed in chunks; optionally written to
    `output_dir` as CSV tables, summary.json and (with `plots`) PNG bar plots."""
    from radlabel.pipeline import get_pipeline

    # the labels and the output folder are checked before the corpus is read, which may take hours
    if output_dir is not None:
        _prepare_output_dir(Path(output_dir))
    if labels is not None and not isinstance(labels, pd.DataFrame):
        labels = read_label_table(labels)
    pipeline = get_pipeline(schema, "all")
    size = 0  # of a text file, whose rows are estimated for the progress bar as it is read
    if isinstance(input, pd.DataFrame):
        if text_column not in input.columns:
            raise missing_column_error(text_column, list(input.columns), "the DataFrame")
        chunks: Iterable[pd.DataFrame] = (input[[text_column]],)
        total = len(input)
    else:
        chunks = iter_table(input, columns=[text_column], chunksize=chunksize)
        folder = Path(input).is_dir()
        total = None if folder else parquet_rows(input)
        if total is None and not folder:
            size = os.path.getsize(input)
    entities: Counter = Counter()
    verbs: Counter = Counter()
    nps: Counter = Counter()
    sims: dict[str, list[float]] = {"noun_phrases": [], "verbs": [], "entities": []}
    n = n_text = n_entities = 0
    if limit is not None and total is not None:
        total = min(total, limit)
    with tqdm(total=total, unit="reports", disable=not progress, desc="stats") as bar:
        read = 0
        for chunk in chunks:
            read += len(chunk)
            estimate = estimated_rows(read, chunk, size)
            if estimate is not None:
                bar.total = max(min(estimate, limit) if limit is not None else estimate, bar.n)
                bar.refresh()
            for raw in chunk[text_column].tolist():
                if limit is not None and n >= limit:
                    break
                n += 1
                bar.update(1)
                if not isinstance(raw, str) or not raw.strip():
                    continue
                raw = raw[:MAX_CHARS]  # what `radlabel label` reads of a longer report
                n_text += 1
                try:
                    graph = pipeline.parse(raw)
                except Exception:  # statistics skip a report the parser cannot handle
                    logger.debug("report %d could not be parsed", n - 1, exc_info=True)
                    graph = None
                if graph is not None:
                    ents = entity_texts(graph)
                    entities.update(ents)
                    n_entities += len(ents)
                # Section contents only, so headers ("FINDINGS:") are not counted as noun phrases.
                p, v = noun_phrases_and_verbs(" \n".join(_section_texts(raw).values()))
                nps.update(p)
                verbs.update(v)
                for kind, value in section_similarity(raw, graph).items():
                    if value == value:
                        sims[kind].append(value)
            if limit is not None and n >= limit:
                break
        bar.total = n  # estimates and a limit end at what was read
    result = StatsResult()
    result.tables["entities"] = frequency_table(entities, ["entity", "label"])
    result.tables["verbs"] = frequency_table(verbs, ["verb"])
    result.tables["noun_phrases"] = frequency_table(nps, ["noun_phrase"])
    result.tables["similarity"] = pd.DataFrame(
        [{"items": k, "pairs": len(v), "mean": float(np.mean(v)) if v else float("nan"),
          "median": float(np.median(v)) if v else float("nan"), "std": float(np.std(v)) if v else float("nan")}
         for k, v in sims.items()])
    result.summary = {"reports": n, "reports_with_text": n_text,
                      "entities_per_report": n_entities / n_text if n_text else float("nan"),
                      "reports_with_findings_and_impression": len(sims["noun_phrases"])}
    if labels is not None:
        table = labels
        # one label row per report, in order (what `radlabel label` writes): a limit keeps the first n of both
        if limit is not None:
            table = table.iloc[:n]
        if len(table) != n:
            logger.warning("The labels have %d rows but the corpus %d reports; label statistics are over the label "
                           "rows (`radlabel label` writes one row per report)", len(table), n)
        classes = [c for c in pipeline.schema.class_names if c in table.columns]
        if not classes:
            raise RadlabelError(
                f"The labels have none of the {pipeline.schema.name} classes "
                f"({', '.join(pipeline.schema.class_names[:5])}, ...); pass the matching --schema.")
        lacking = [c for c in pipeline.schema.class_names if c not in table.columns]
        if lacking:
            logger.warning("The labels lack %d of the %s classes (%s); label statistics cover the other %d (a "
                           "--schema other than the one that labelled them?)", len(lacking), pipeline.schema.name,
                           ", ".join(lacking[:5]) + (", ..." if len(lacking) > 5 else ""), len(classes))
        # read (and checked) once: the figures below take the float frame as it is
        table = pd.DataFrame(label_values(table, classes, "The labels"), columns=classes)
        result.tables["prevalence"] = prevalence(table, classes)
        card, dens = label_cardinality(table, classes)
        card_u, dens_u = label_cardinality(table, classes, uncertain_as_positive=True)
        result.summary.update(label_cardinality=card, label_density=dens,
                              label_cardinality_with_uncertain=card_u, label_density_with_uncertain=dens_u)
    if output_dir is not None:
        _write_outputs(result, Path(output_dir), plots, top)
    return result


_TABLES = ("entities", "verbs", "noun_phrases", "similarity", "prevalence")
_PLOTS = ("entities", "verbs", "prevalence")


def _prepare_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RadlabelError(f"The stats output {str(out)!r} is a file; -o names a folder for the tables.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RadlabelError(f"Cannot make the stats output folder {str(out)!r} ({exc.strerror or exc}).") from exc
    check_folder_writable(out, "The stats output folder")


def _write_outputs(result: StatsResult, out: Path, plots: bool, top: int) -> None:
    """Every file is written into a hidden folder inside `out` first and moved in only when all are written, so
    a failed write (a full disk) leaves the earlier run's set as it was, not a partial set. `out` was made and
    tried (`_prepare_output_dir`) before the corpus was read."""
    staging = Path(tempfile.mkdtemp(prefix=".stats-", dir=out))
    try:
        for name, table in result.tables.items():
            write_table(table, staging / f"{name}.csv")
        # JSON has no NaN: an undefined figure (no report with text) is null
        summary = {k: None if isinstance(v, float) and v != v else v for k, v in result.summary.items()}
        atomic_write_text(staging / "summary.json", json.dumps(summary, indent=1) + "\n")
        if plots:
            t = result.tables
            if len(t["entities"]):
                ent = t["entities"].assign(name=t["entities"].entity + " (" + t["entities"].label + ")")
                bar_plot(ent, "name", "count", staging / "entities.png", "Most frequent entities", top)
            if len(t["verbs"]):
                bar_plot(t["verbs"], "verb", "count", staging / "verbs.png", "Most frequent verbs", top)
            if "prevalence" in t:  # the most frequent classes first, as the other plots
                bar_plot(t["prevalence"].sort_values("prevalence", ascending=False, kind="stable"), "class",
                         "prevalence", staging / "prevalence.png", "Class prevalence (1)", top)
        # a folder reused from an earlier run keeps none of its files: they would pass for this run's
        for name in [f"{t}.csv" for t in _TABLES] + [f"{p}.png" for p in _PLOTS]:
            (out / name).unlink(missing_ok=True)
        for written in sorted(staging.iterdir()):
            os.replace(written, out / written.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("stats written to %s", out)
