import pytest
import spacy

from radlabel.mentions import Mention, MentionMatcher, add_phrases, plural, select_longest
from radlabel.schema import load_schema, schema_from_dict

LEXICON = {
    "anatomy": ["(right|left)? (upper|lower)? lobe"],
    "modifiers": ["(small|increased|left)"],
    "other_findings": ["granuloma"],
    "misspellings": {"effusion": ["effusoin"]},
}
SCHEMA = schema_from_dict({
    "name": "t",
    "classes": [
        {"name": "Effusion", "mentions": ["(pleural)? effusion"], "unmentions": ["pericardial effusion"]},
        {"name": "Opacity", "mentions": ["opacity"], "absent_phrases": ["lungs are clear"]},
        {"name": "Nodule", "mentions": ["nodule"]},
    ],
})


@pytest.fixture(scope="module")
def found():
    nlp = spacy.blank("en")
    matcher = MentionMatcher(nlp.vocab, SCHEMA, nlp.tokenizer, LEXICON)

    def run(text):
        doc = nlp.make_doc(text)
        return [(doc[m.start : m.end].text, m.kind, m.classes) for m in matcher(doc)]

    return run


def test_plural():
    assert [plural(w) for w in ("opacity", "nodule", "atelectasis", "thorax", "lung", "a")] == [
        "opacities", "nodules", "atelectases", None, "lungs", None,
    ]


def test_observations_anatomy_modifiers(found):
    assert found("Small LEFT pleural effusions in the right lower lobe.") == [
        ("Small", "modifier", ()), ("LEFT", "modifier", ()), ("pleural effusions", "observation", ("Effusion",)),
        ("right lower lobe", "anatomy", ()),
    ]


def test_misspelling_plural_unmention_absent_other(found):
    assert found("effusoin") == [("effusoin", "observation", ("Effusion",))]
    assert found("Opacities") == [("Opacities", "observation", ("Opacity",))]
    assert found("pericardial effusion") == []
    assert found("The lungs are clear") == [("lungs are clear", "absent", ("Opacity",))]
    assert found("calcified granulomas") == [("granulomas", "other", ())]


def test_select_longest_prefers_longer_then_priority():
    spans = [Mention(0, 3, "anatomy"), Mention(1, 3, "observation", ("A",)), Mention(3, 4, "modifier")]
    assert [(m.start, m.end) for m in select_longest(spans)] == [(0, 3), (3, 4)]
    tie = [Mention(0, 2, "anatomy"), Mention(1, 3, "observation", ("A",)), Mention(0, 1, "modifier")]
    assert [(m.start, m.end) for m in select_longest(tie)] == [(0, 1), (1, 3)]
    same = [Mention(0, 1, "modifier"), Mention(0, 1, "observation", ("A",))]
    assert select_longest(same)[0].kind == "observation"


def test_phrases_added_in_chunks_all_match():
    nlp = spacy.blank("en")
    matcher = spacy.matcher.PhraseMatcher(nlp.vocab, attr="LOWER")
    phrases = ["left effusion", "right effusion", "small nodule", "large mass", "old fracture"]
    add_phrases(matcher, "finding", phrases, nlp.tokenizer, chunk=2)
    doc = nlp("Left effusion, small nodule, old fracture, right effusion and a large mass.")
    assert sorted(doc[s:e].text.lower() for _, s, e in matcher(doc)) == sorted(phrases)


def test_the_matchers_stay_within_their_phrase_budget(monkeypatch):
    """Each expanded phrase costs about 1.5 KB of PhraseMatcher memory in every worker, and `--jobs 2` on 1M reports
    runs only a few tens of MB under its 1 GB target (benchmarks/bench_labeler.py --memory): one careless optional
    group can add ten thousand phrases. Growing past these budgets needs that benchmark run again."""
    import radlabel.assertion as assertion
    import radlabel.mentions as mentions
    from radlabel.pipeline import _blank_nlp

    added: dict[int, int] = {}
    real = mentions.add_phrases

    def counting(matcher, key, phrases, tokenizer, chunk=1000):
        added[id(matcher)] = added.get(id(matcher), 0) + len(phrases)
        real(matcher, key, phrases, tokenizer, chunk)

    monkeypatch.setattr(mentions, "add_phrases", counting)
    monkeypatch.setattr(assertion, "add_phrases", counting)
    nlp = _blank_nlp()
    context = assertion.ContextEngine(nlp.vocab, nlp.tokenizer)
    chexpert = mentions.MentionMatcher(nlp.vocab, load_schema("chexpert"), nlp.tokenizer)
    # 52,601 on 2026-11-25 with the British "-ised" trigger spellings (48,571 before): --memory 1000000 gave 941 MB
    # RSS summed (933 MB before)
    assert 30_000 < added[id(context.matcher)] < 55_000
    assert 50_000 < added[id(chexpert.matcher)] < 80_000  # 76,747 on 2026-11-25


def test_background_classes_are_classless_findings_that_never_take_the_schemas_own():
    nlp = spacy.blank("en")
    background = schema_from_dict({
        "name": "bg", "no_finding": "No Finding", "no_finding_ignore": ["Devices"], "other_findings_from": [],
        "classes": [
            {"name": "Heart", "mentions": ["cardiomegaly"], "absent_phrases": ["normal heart size"]},
            {"name": "Fluid", "mentions": ["(loculated)? (pleural)? effusion"]},
            {"name": "Lesion", "mentions": ["mass"], "unmentions": ["mass effect"]},
            {"name": "Devices", "mentions": ["chest tube"]},
            {"name": "Pericardial", "mentions": ["pericardial effusion"]},
            {"name": "Effusion", "mentions": ["hydrothorax"]},  # a class the schema names: the schema's to define
        ],
    })
    matcher = MentionMatcher(nlp.vocab, SCHEMA, nlp.tokenizer, LEXICON, background=[background])

    def run(text):
        doc = nlp.make_doc(text)
        return [(doc[m.start : m.end].text, m.kind, m.classes) for m in matcher(doc)]

    assert run("cardiomegaly") == [("cardiomegaly", "other", ())]
    assert run("normal heart size") == [("normal heart size", "absent", ())]
    # the schema's own "effusion" is kept, not swallowed by the background's longer "loculated effusion"
    assert run("loculated effusion") == [("effusion", "observation", ("Effusion",))]
    assert run("mass effect") == []  # the background's own unmention
    assert run("chest tube") == []  # a class the background ignores for No Finding is no finding here
    assert run("hydrothorax") == []
    # the schema's own unmention takes "pericardial effusion" from its Effusion; it is still a finding
    assert run("pericardial effusion") == [("pericardial effusion", "other", ())]
