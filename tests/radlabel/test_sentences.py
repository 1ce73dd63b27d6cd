from radlabel.sentences import split_sentences


def sents(text):
    return [text[a:b] for a, b in split_sentences(text)]


def test_periods_and_newlines_split():
    assert sents("No effusion. Heart normal\nLungs clear!") == ["No effusion.", "Heart normal", "Lungs clear!"]


def test_decimals_and_abbreviations_do_not_split():
    assert sents("Nodule 1.5 cm. Seen by Dr. Smith, e.g. today.") == [
        "Nodule 1.5 cm.", "Seen by Dr. Smith, e.g. today."
    ]


def test_span_limits_and_empty_pieces():
    text = "HEADER: One. Two.  ..  "
    assert [text[a:b] for a, b in split_sentences(text, 8)] == ["One.", "Two."]
    assert split_sentences("   ") == []


def test_question_mark_ends_sentence():
    assert sents("? effusion. No pneumothorax.") == ["? effusion.", "No pneumothorax."]
