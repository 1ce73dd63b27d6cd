import pytest
import spacy

from radlabel.errors import RadlabelError
from radlabel.mentions import Mention, MentionMatcher, add_phrases, expand_phrase, plural, select_longest
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


def test_expand_phrase_alternatives_optional_and_nested():
    assert expand_phrase("(a|b) c (d)?") == ["a c d", "a c", "b c d", "b c"]
    assert expand_phrase("x (y|(p|q)? z)") == ["x y", "x p z", "x q z", "x z"]
    # A trailing "?" makes the last letter optional; a lone "?" stays a literal token.
    assert expand_phrase("no (evidence|signs?) of") == ["no evidence of", "no signs of", "no sign of"]
    assert expand_phrase("?") == ["?"]
    with pytest.raises(RadlabelError, match="unbalanced"):
        expand_phrase("(a|b")
    with pytest.raises(RadlabelError, match="expands to more than"):
        expand_phrase(" ".join(["(a|b|c|d|e|f|g|h|i|j)"] * 5))
    for empty in ("()", "( | )", "(  )?"):  # a class mention that could never be found
        with pytest.raises(RadlabelError, match="stands for no phrase"):
            expand_phrase(empty)
    # a group inside a word expanded to split words ("underpenetrat ion") that no report holds
    for glued in ("underpenetrat(ion|ed)", "(a|b)c", "x(y)? z"):
        with pytest.raises(RadlabelError, match="has a group joined to a word; groups hold whole words"):
            expand_phrase(glued)
    assert expand_phrase("((a|b) c|d)? e") == ["a c e", "b c e", "d e", "e"]
    # punctuation beside a group is a token of its own: spaCy splits "heart's" into "heart 's"
    assert expand_phrase("(heart|cardiac)'s size") == ["heart 's size", "cardiac 's size"]
    assert expand_phrase("[(a|b)]") == ["[ a ]", "[ b ]"]
    with pytest.raises(RadlabelError, match="joined to a word"):
        expand_phrase("(a|b)?c")


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
    assert 30_000 < added[id(context.matcher)] < 50_000  # 48,571 on 2026-11-25 (48,040 on 2026-11-24)
    assert 50_000 < added[id(chexpert.matcher)] < 80_000  # 76,747 on 2026-11-25
