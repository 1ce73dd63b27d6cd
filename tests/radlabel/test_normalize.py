import pytest
from hypothesis import given
from hypothesis import strategies as st

from radlabel.normalize import normalize


def test_whitespace_bullets_and_numbering():
    n = normalize("FINDINGS:\n  - No effusion.\n\n\n2) Heart   normal.\tEnd")
    assert n.text == "FINDINGS:\nNo effusion.\nHeart normal. End"


def test_inline_numbering_becomes_a_line_break():
    n = normalize("IMPRESSION: 1. Bullous emphysema. 2. Probably scarring.")
    assert n.text == "IMPRESSION:\nBullous emphysema.\nProbably scarring."


def test_decimals_are_not_numbering():
    assert normalize("Nodule measures 1.5 cm.").text == "Nodule measures 1.5 cm."


def test_deid_tokens_and_punctuation():
    n = normalize("XXXXX-year-old \u201cclear\u201d lungs\u2026 apex.There is")
    assert n.text == 'XXXX-year-old "clear" lungs, apex. There is'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an ellipsis before lower case goes on with the sentence, before upper case it ends it
        ("Right lower lobe opacity\u2026concerning for pneumonia.", "Right lower lobe opacity, concerning for pneumonia."),
        ("Opacity... concerning for pneumonia.", "Opacity, concerning for pneumonia."),
        ("No effusion...Small pneumothorax.", "No effusion. Small pneumothorax."),
        # a hard wrap inside a sentence is a space; a new line in capitals, a list or a header is not
        ("Increased right lower lobe\nopacity concerning for\npneumonia.",
         "Increased right lower lobe opacity concerning for pneumonia."),
        ("Heart normal\nLungs clear", "Heart normal\nLungs clear"),
        ("An age-\nindeterminate fracture", "An age-indeterminate fracture"),
        ("No effusion -\nsmall pneumothorax", "No effusion - small pneumothorax"),
        ("No effusion.\n\nno pneumothorax", "No effusion.\nno pneumothorax"),
        ("indication: cough\nfindings: no effusion", "indication: cough\nfindings: no effusion"),
        ("lungs are clear\nimpression\nnormal", "lungs are clear\nimpression\nnormal"),
        ("opacity\n- effusion", "opacity\neffusion"),
        # invisible characters go, fullwidth letters become ASCII
        ("Small left ef\u00adfusion.", "Small left effusion."),
        ("pneumo\u200cthorax \ufeff", "pneumothorax "),
        ("\uff32ight lower lobe", "Right lower lobe"),
    ],
)
def test_ellipses_and_hard_wraps(text, expected):
    assert normalize(text).text == expected


def test_offsets_map_back_to_original():
    text = "A  lot\n\n of   space. Apex.There"
    n = normalize(text)
    for word in ("lot", "of", "space", "There"):
        i = n.text.index(word)
        s, e = n.to_original(i), n.to_original(i + len(word))
        assert text[s:e] == word


def test_unchanged_text_is_identity():
    n = normalize("No pneumothorax.")
    assert n.text == "No pneumothorax." and n.to_original(5) == 5


@given(st.text(max_size=200))
def test_any_text_maps_into_range(text):
    n = normalize(text)
    for i in range(len(n.text) + 1):
        assert 0 <= n.to_original(i) <= len(text)


def test_long_runs_are_cut_and_still_map():
    text = "a " + "(" * 250 + " b"
    n = normalize(text)
    assert max(len(w) for w in n.text.split()) <= 100
    assert n.text.replace(" ", "") == text.replace(" ", "")
    assert text[n.to_original(n.text.index("b"))] == "b"
