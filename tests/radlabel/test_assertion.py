import pytest
import spacy

from radlabel.assertion import ContextEngine, load_context_rules
from radlabel.errors import RadlabelError
from radlabel.mentions import Mention

NLP = spacy.blank("en")


@pytest.fixture(scope="module")
def engine():
    return ContextEngine(NLP.vocab, NLP.tokenizer)


def status(engine, text, word):
    """Status of the (last) token `word` in a one-sentence text."""
    doc = NLP.make_doc(text)
    i = max(t.i for t in doc if t.lower_ == word)
    trig = engine.triggers(doc)
    return engine.assign([Mention(i, i + 1, "observation")], [0], trig, [0] * len(trig))[0]


@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        ("No evidence of pneumothorax", "pneumothorax", "absent"),
        ("No focal consolidation, pleural effusion, or pneumothorax", "pneumothorax", "absent"),
        ("Pneumothorax is not seen", "pneumothorax", "absent"),
        ("Resolved pneumothorax", "pneumothorax", "absent"),
        ("The pneumothorax has resolved", "pneumothorax", "absent"),
        # A weak hedge on one finding is uncertain (CheXpert)...
        ("Cannot exclude pneumonia", "pneumonia", "uncertain"),
        ("Pneumonia cannot be excluded", "pneumonia", "uncertain"),
        ("May represent atelectasis", "atelectasis", "uncertain"),
        ("? effusion", "effusion", "uncertain"),
        ("Opacity concerning for pneumonia", "pneumonia", "uncertain"),
        ("Lingular atelectasis is suspected", "atelectasis", "uncertain"),
        # ... over a list of alternatives it only raises possibilities: hypothetical (not counted).
        ("Opacity may represent focal infiltrate versus atelectasis", "atelectasis", "hypothetical"),
        ("Opacity may represent focal infiltrate versus atelectasis", "infiltrate", "hypothetical"),
        ("Opacity which may represent atelectasis or infiltrate", "infiltrate", "hypothetical"),
        ("Opacity which may represent atelectasis or infiltrate", "atelectasis", "hypothetical"),
        ("Question of left lower lobe pneumonia and/or pleural effusion", "pneumonia", "hypothetical"),
        ("Concerning for pneumonia or aspiration", "pneumonia", "hypothetical"),
        ("Lingular atelectasis or infiltrate cannot be ruled out", "atelectasis", "hypothetical"),
        ("Lingular atelectasis or infiltrate cannot be ruled out", "infiltrate", "hypothetical"),
        # An alternative before the hedge is outside its scope.
        ("Atelectasis or scarring, possible small effusion", "effusion", "uncertain"),
        ("Atelectasis or scarring, possible small effusion", "atelectasis", "present"),
        # Differentials and disfavoured findings are hypothetical too.
        ("The differential diagnosis includes round pneumonia", "pneumonia", "hypothetical"),
        ("Edema, or alternatively atypical infection", "infection", "hypothetical"),
        ("Atypical infection is another consideration", "infection", "hypothetical"),
        ("Pneumonia is less likely", "pneumonia", "hypothetical"),
        # ... but what the exam may miss is a caveat, not a differential
        ("Radiographs are insensitive for rib fractures", "fractures", "caveat"),
        ("Nondisplaced fractures may not be demonstrated", "fractures", "caveat"),
        ("Nondisplaced fractures may be radiographically occult", "fractures", "caveat"),
        ("Fracture can not be excluded", "fracture", "uncertain"),
        # A list without a weak hedge keeps its findings; a negation over a list still negates.
        ("No consolidation, effusion, or pneumothorax", "pneumothorax", "absent"),
        # Strong hedges keep the finding: uncertain.
        ("Atelectasis versus pneumonia", "atelectasis", "uncertain"),
        ("Atelectasis versus pneumonia", "pneumonia", "uncertain"),
        ("Probable right lower lobe pneumonia", "pneumonia", "uncertain"),
        ("Mild bibasilar airspace disease, probably atelectasis", "atelectasis", "uncertain"),
        ("Opacities most suggestive of atelectasis", "atelectasis", "uncertain"),
        ("Bibasilar airspace disease, either atelectasis or infiltrate", "infiltrate", "uncertain"),
        ("Questionable right middle lobe nodule", "nodule", "uncertain"),
        ("Opacity, which may represent scarring, probable atelectasis", "atelectasis", "uncertain"),
        # A hedge on something else ("age-indeterminate") does not reach the finding.
        ("Several age-indeterminate left-sided rib fractures", "fractures", "present"),
        ("Fracture of indeterminate age", "fracture", "present"),
        ("No new effusion", "effusion", "uncertain"),
        ("Evaluate for pneumonia", "pneumonia", "hypothetical"),
        ("If there is concern for fracture, consider rib series", "fracture", "hypothetical"),
        ("Small left effusion", "effusion", "present"),
        ("No change in the small effusion", "effusion", "present"),
        ("No pneumothorax but there is a large effusion", "effusion", "present"),
        ("No focal consolidation, suspicious pulmonary opacity, or effusion", "effusion", "absent"),
        ("No focal air space opacity to suggest a pneumonia", "pneumonia", "absent"),
        ("Emphysema without superimposed pneumonia", "pneumonia", "absent"),
        ("Atelectasis possibly present", "atelectasis", "uncertain"),
        ("Pneumonia is probably present", "pneumonia", "uncertain"),
        ("No effusion, atelectasis possibly present", "atelectasis", "uncertain"),
    ],
)
def test_radiology_assertions(engine, text, word, expected):
    assert status(engine, text, word) == expected


@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        ("No pneumothorax, small left pleural effusion", "effusion", "present"),
        ("No pneumothorax, mild cardiomegaly", "cardiomegaly", "present"),
        ("Heart size normal, no effusion, mild bibasilar atelectasis", "atelectasis", "present"),
        ("No pneumothorax - small right effusion", "effusion", "present"),
        ("There is no pneumothorax and a small effusion", "effusion", "present"),
        ("No pneumothorax, small left pleural effusion", "pneumothorax", "absent"),
        # a list under one negation stays negated, also with a size word inside it
        ("No effusion, pneumothorax, or consolidation", "consolidation", "absent"),
        ("No pneumothorax, large pleural effusion, or focal consolidation", "effusion", "absent"),
        ("No pneumothorax, large pleural effusion, or focal consolidation", "consolidation", "absent"),
        ("No effusion, small pneumothorax or consolidation", "pneumothorax", "absent"),
    ],
)
def test_a_comma_before_a_new_sized_finding_ends_the_negation(engine, text, word, expected):
    assert status(engine, text, word) == expected


@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        # a side word after the comma starts a new finding too
        ("No pneumothorax, right lower lobe pneumonia", "pneumonia", "present"),
        ("No pneumothorax, left basilar atelectasis", "atelectasis", "present"),
        ("No pneumothorax, left pleural effusion, or consolidation", "effusion", "absent"),
        # ... and so does a finding that its own clause calls present
        ("No effusion, pneumonia present", "pneumonia", "present"),
        ("No effusion, pneumothorax is noted", "pneumothorax", "present"),
        ("No effusion, pneumonia present", "effusion", "absent"),
        ("No effusion, edema or pneumonia present", "pneumonia", "absent"),
        ("No effusion, edema or pneumonia present", "edema", "absent"),
        ("No effusion or pneumothorax present", "pneumothorax", "absent"),
        ("No effusion and pneumothorax present", "pneumothorax", "absent"),
        ("No effusion, pneumothorax is not present", "pneumothorax", "absent"),
        ("No effusion, atelectasis seen", "atelectasis", "absent"),  # bare "seen" also closes lists ("no A, B seen")
        # the comma must be in the present word's own clause
        ("No effusion, pneumothorax. Edema present", "pneumothorax", "absent"),
        ("No effusion, pneumothorax; edema present", "pneumothorax", "absent"),
        ("No effusion, pneumothorax\nEdema present", "pneumothorax", "absent"),
        # a hyphen inside a word is no dash, and "right and left" is one phrase
        ("No right-sided pleural effusion is seen", "effusion", "absent"),
        ("No focal air-space consolidation is present", "consolidation", "absent"),
        ("No right and left pleural effusions", "effusions", "absent"),
        # a comma list before the present word stays one negated list
        ("No consolidation, edema, effusion, pneumothorax is seen", "pneumothorax", "absent"),
        # an aside without a finding of its own does not cut a finding off from the trigger after it
        ("The left pleural effusion, present on the prior study, has resolved", "effusion", "absent"),
        ("Pneumothorax, right apex, has resolved", "pneumothorax", "absent"),
        ("Consolidation, left lower lobe, cannot be excluded", "consolidation", "uncertain"),
    ],
)
def test_a_side_word_or_a_present_word_makes_a_new_clause(engine, text, word, expected):
    assert status(engine, text, word) == expected


def test_scope_stays_in_sentence(engine):
    doc = NLP.make_doc("No effusion. Pneumothorax.")
    trig = engine.triggers(doc)
    sents = [0 if t.start < 3 else 1 for t in trig]
    out = engine.assign([Mention(1, 2, "observation"), Mention(3, 4, "observation")], [0, 1], trig, sents)
    assert out == ["absent", "present"]


def test_window_limits_reach(engine):
    far = "No " + "big " * 25 + "effusion"
    assert status(engine, far, "effusion") == "present"


def test_custom_rules_and_bad_rules(tmp_path):
    rules = {"negation": {"pre": ["nope"]}, "terminate": ["stop"]}
    eng = ContextEngine(NLP.vocab, NLP.tokenizer, rules)
    assert status(eng, "nope effusion", "effusion") == "absent"
    assert status(eng, "nope stop effusion", "effusion") == "present"
    assert status(eng, "no effusion", "effusion") == "present"
    bad = tmp_path / "bad.yaml"
    bad.write_text("negation: [no]\n")
    with pytest.raises(RadlabelError, match="must map directions"):
        load_context_rules(str(bad))
