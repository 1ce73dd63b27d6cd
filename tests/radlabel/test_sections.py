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
