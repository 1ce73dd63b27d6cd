from radlabel.sections import canonical_section, find_sections


def names(text):
    return [(s.name, text[s.start : s.end].strip()) for s in find_sections(text)]


def test_headers_are_found_and_canonical():
    text = "INDICATION: cough.\nFINDINGS: No effusion.\nImpression: Normal."
    assert names(text) == [("indication", "cough."), ("findings", "No effusion."), ("impression", "Normal.")]


def test_no_header_counts_as_findings():
    assert names("No pneumothorax.") == [("findings", "No pneumothorax.")]


def test_header_after_sentence_on_same_line():
    text = "History: fever. Comparison: none. FINDINGS: Clear lungs."
    assert [n for n, _ in names(text)] == ["history", "comparison", "findings"]


def test_preamble_before_findings_and_before_impression_only():
    assert names("Chest PA. FINDINGS: clear.")[0] == ("preamble", "Chest PA.")
    assert names("Small effusion.\nIMPRESSION: effusion.")[0] == ("findings", "Small effusion.")


def test_header_word_inside_sentence_is_not_a_header():
    assert [n for n, _ in names("Patient with history of asthma. Lungs clear.")] == ["findings"]


def test_canonical_names():
    assert canonical_section("Impressions") == "impression"
    assert canonical_section("CLINICAL  HISTORY") == "history"
    assert find_sections("") == []


def test_header_alone_on_its_line_without_colon():
    text = "INDICATION\nCough.\nFINDINGS\nNo effusion.\nImpression\nNormal."
    assert names(text) == [("indication", "Cough."), ("findings", "No effusion."), ("impression", "Normal.")]


def test_an_inline_header_after_a_question_or_exclamation_mark_starts_a_section():
    text = "INDICATION: r/o pneumonia? FINDINGS: Right lower lobe consolidation."
    names = [(s.name, text[s.start:s.end].strip()) for s in find_sections(text)]
    assert names == [("indication", "r/o pneumonia?"), ("findings", "Right lower lobe consolidation.")]
    assert [s.name for s in find_sections("Urgent! IMPRESSION: small effusion.")][-1] == "impression"


def test_a_report_without_findings_header_goes_on_in_findings_after_a_request_section():
    # the body of "INDICATION: ...\n\nRight pneumothorax." was indication, so it was never labelled
    assert names("INDICATION: Cough.\nRight pneumothorax.") == [("indication", "Cough."),
                                                              ("findings", "Right pneumothorax.")]
    assert names("COMPARISON: None.\nLungs clear.")[-1] == ("findings", "Lungs clear.")
    # with a findings or impression header the sections are as written
    assert [n for n, _ in names("INDICATION: Cough.\nPneumonia?\nFINDINGS: Clear.")] == ["indication", "findings"]
    assert names("INDICATION:\nPneumonia.") == [("indication", "Pneumonia.")]
    # lines that still speak of the request stay in it: the patient, the question, earlier studies
    text = "HISTORY: 65-year-old male.\nKnown right effusion, evaluate.\n? pneumonia\nNo effusion."
    assert names(text) == [("history", "65-year-old male.\nKnown right effusion, evaluate.\n? pneumonia"),
                           ("findings", "No effusion.")]


def test_more_header_spellings():
    for header, name in [("FINAL IMPRESSION", "impression"), ("IMPRESSION/RECOMMENDATION", "impression"),
                         ("FINDINGS/IMPRESSION", "findings"), ("ADDENDUM", "impression"),
                         ("CLINICAL NOTES", "history"), ("Admitting diagnosis", "history")]:
        assert names(f"INDICATION: Cough.\n{header}: Right pneumothorax.")[-1][0] == name, header
    # in capitals, a header may follow a word on its line
    assert names("INDICATION: cough FINDINGS: Right pneumothorax.")[-1] == ("findings", "Right pneumothorax.")
    assert [n for n, _ in names("The findings: clear.")] == ["findings"]  # a lower-case word stays text
