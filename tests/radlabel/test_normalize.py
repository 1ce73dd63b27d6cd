import pytest
from hypothesis import given
from hypothesis import strategies as st

from radlabel import parse
from radlabel.normalize import normalize


def test_whitespace_bullets_and_numbering():
    n = normalize("FINDINGS:\n  - No effusion.\n\n\n2) Heart   normal.\tEnd")
    assert n.text == "FINDINGS:\nNo effusion.\nHeart normal. End"


def test_a_bullet_or_number_glued_to_the_text_and_a_glued_semicolon():
    assert normalize("\u2022No pneumothorax.\n1.No effusion.\n-Clear.").text == "No pneumothorax.\nNo effusion.\nClear."
    assert normalize("No pneumothorax;small effusion.").text == "No pneumothorax; small effusion."
    assert normalize("No pneumothorax.\u200b Small effusion.").text.count("\u200b") == 0
    assert normalize("-5 degrees. 1.5 cm.").text == "-5 degrees. 1.5 cm."  # no capital follows: not a bullet


def test_inline_numbering_becomes_a_line_break():
    n = normalize("IMPRESSION: 1. Bullous emphysema. 2. Probably scarring.")
    assert n.text == "IMPRESSION:\nBullous emphysema.\nProbably scarring."


def test_decimals_are_not_numbering():
    assert normalize("Nodule measures 1.5 cm.").text == "Nodule measures 1.5 cm."


def test_deid_tokens_and_punctuation():
    n = normalize("XXXXX-year-old \u201cclear\u201d lungs\u2026 apex.There is")
    assert n.text == 'XXXX-year-old "clear" lungs. apex. There is'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an ellipsis (or a run of them) ends a sentence, and keeps the words either side apart
        ("Right lower lobe opacity\u2026concerning for pneumonia.", "Right lower lobe opacity. concerning for pneumonia."),
        ("Pleural effusion\u2026\u2026small.", "Pleural effusion. small."),
        ("No effusion...Small pneumothorax.", "No effusion. Small pneumothorax."),
        # a hard wrap inside a sentence is a space: the line stops mid-phrase, or fills a wrapped text's width
        ("Increased right lower lobe opacity concerning for\npneumonia.",
         "Increased right lower lobe opacity concerning for pneumonia."),
        ("The right lower lobe shows a patchy airspace opacity which has increased in\nsize since the prior study.",
         "The right lower lobe shows a patchy airspace opacity which has increased in size since the prior study."),
        ("There is a moderate right pleural effusion and adjacent compressive lower\nlobe atelectasis, unchanged.\n",
         "There is a moderate right pleural effusion and adjacent compressive lower lobe atelectasis, unchanged.\n"),
        # ... but a list of short lines, one finding each, keeps its breaks (lower case or not, LF, CRLF, CR)
        ("IMPRESSION:\nno pneumothorax\nsmall left pleural effusion", "IMPRESSION:\nno pneumothorax\nsmall left pleural effusion"),
        ("No pneumothorax\r\nsmall left pleural effusion", "No pneumothorax\nsmall left pleural effusion"),
        ("Findings\rno pneumothorax\rsmall effusion", "Findings\nno pneumothorax\nsmall effusion"),
        ("no acute cardiopulmonary abnormality\nmild degenerative changes of the thoracic spine",
         "no acute cardiopulmonary abnormality\nmild degenerative changes of the thoracic spine"),
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


def test_an_end_offset_stops_before_dropped_characters():
    n = normalize("Small\u00ad left")
    assert n.text == "Small left"
    assert n.to_original(5, end=True) == 5  # "Small" ends before the soft hyphen
    assert n.to_original(5) == 6  # ... while " left" starts after it


@pytest.mark.parametrize("text", ["FINDINGS: No effusion.\r\n", "FINDINGS: No effusion.  "])
def test_the_end_of_the_text_maps_to_the_end_of_the_original(text):
    n = normalize(text)
    assert n.to_original(len(n.text), end=True) == len(text)
    # the last section ends where the text does, as earlier ones take their whole trailing "\r\n\r\n"
    assert parse(text).sections["findings"] == [[9, len(text)]]
