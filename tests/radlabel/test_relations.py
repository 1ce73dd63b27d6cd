import pytest

from radlabel import parse
from radlabel.assertion import Trigger
from radlabel.mentions import Mention
from radlabel.relations import find_relations


def test_located_at_modify_suggestive():
    # "Increased right lower lobe opacity , concerning for infection"
    #  0         1     2     3    4       5 6          7   8
    mentions = [
        Mention(0, 1, "modifier"), Mention(1, 4, "anatomy"), Mention(4, 5, "observation", ("Opacity",)),
        Mention(8, 9, "observation", ("Pneumonia",)),
    ]
    trig = [Trigger(6, 8, frozenset({("suggestive",), ("uncertain", "pre")}))]
    rels = find_relations(mentions, [0, 0, 0, 0], trig, [0])
    assert sorted(rels) == [(0, "modify", 2), (2, "located_at", 1), (2, "suggestive_of", 3)]


def test_anatomy_after_observation_and_sentence_boundary():
    # "effusion in the left base . nodule"
    mentions = [Mention(0, 1, "observation", ("E",)), Mention(3, 5, "anatomy"), Mention(6, 7, "observation", ("N",))]
    rels = find_relations(mentions, [0, 0, 1], [], [])
    assert rels == [(0, "located_at", 1)]


def test_modifier_after_observation_and_too_far():
    # "effusion is small" -> small modifies effusion; a modifier 5 tokens away modifies nothing
    mentions = [Mention(0, 1, "observation", ("E",)), Mention(2, 3, "modifier")]
    assert find_relations(mentions, [0, 0], [], []) == [(1, "modify", 0)]
    far = [Mention(0, 1, "modifier"), Mention(6, 7, "observation", ("E",))]
    assert find_relations(far, [0, 0], [], []) == []


def test_modifier_on_anatomy_without_observation():
    mentions = [Mention(0, 1, "modifier"), Mention(1, 2, "anatomy")]
    assert find_relations(mentions, [0, 0], [], []) == [(0, "modify", 1)]


def _edges(text):
    g = parse(text)
    names = {e.id: e.tokens.lower() for e in g.entities}
    return {(e.tokens.lower(), rel, names[t]) for e in g.entities for rel, t in e.relations}


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        # an anatomy across a comma or a clause joint belongs to the other finding
        ("Effusion at the left base, opacity at the right base.",
         ("opacity", "located_at", "right base"), ("opacity", "located_at", "left base")),
        ("Atelectasis at the left base with effusion at the right base.",
         ("effusion", "located_at", "right base"), ("effusion", "located_at", "left base")),
        ("Cardiomegaly and left lower lobe atelectasis.",
         ("atelectasis", "located_at", "left lower lobe"), ("cardiomegaly", "located_at", "left lower lobe")),
        ("Effusion, right lower lobe opacity.",
         ("opacity", "located_at", "right lower lobe"), ("effusion", "located_at", "right lower lobe")),
        ("Pneumothorax, right apex, has resolved.", ("pneumothorax", "located_at", "right apex"), None),
        # a hedge that also links keeps both jobs
        ("Right upper lobe opacity likely representing pneumonia.", ("opacity", "suggestive_of", "pneumonia"), None),
        ("Right basilar opacity is likely atelectasis.", ("opacity", "suggestive_of", "atelectasis"), None),
        ("Opacity in the left lung which could be pneumonia.", ("opacity", "suggestive_of", "pneumonia"), None),
        ("Left lower lobe opacity in keeping with pneumonia.", ("opacity", "suggestive_of", "pneumonia"), None),
        # "bibasilar" is a place, as RadGraph marks it; "prior" modifies nothing
        ("Bibasilar opacities.", ("opacities", "located_at", "bibasilar"), None),
        # every alternative, every joined place
        ("Left retrocardiac opacity, which could represent atelectasis or consolidation.",
         ("opacity", "suggestive_of", "consolidation"), None),
        ("Opacity may represent atelectasis or small effusion.", ("opacity", "suggestive_of", "effusion"), None),
        ("Atelectasis in the right lower lobe and left lower lobe.",
         ("atelectasis", "located_at", "left lower lobe"), None),
        ("Opacity in the right lower lobe and effusion at the left base.",
         ("effusion", "located_at", "left base"), ("opacity", "located_at", "left base")),
        ("Patchy right lower lobe and left lower lobe opacities.",
         ("opacities", "located_at", "right lower lobe"), None),
        ("Effusion at the right base and left lower lobe atelectasis.",
         ("atelectasis", "located_at", "left lower lobe"), ("effusion", "located_at", "left lower lobe")),
        ("Effusion at the right base and left lower lobe atelectasis.",
         ("effusion", "located_at", "right base"), ("atelectasis", "located_at", "right base")),
        # a side word before an absent phrase qualifies it (and shares its label)
        ("The right lung is clear.", ("right", "modify", "lung is clear"), None),
        ("Atelectasis at the right and left lung bases.", ("atelectasis", "located_at", "left lung bases"), None),
        # a place fronted at the clause start reaches over its comma
        ("In the left lower lobe and lingula, there is consolidation.",
         ("consolidation", "located_at", "left lower lobe"), None),
        ("At the left base, atelectasis; at the right base, effusion.",
         ("effusion", "located_at", "right base"), ("atelectasis", "located_at", "right base")),
        ("Compared to prior, the opacity has increased.", ("increased", "modify", "opacity"),
         ("prior", "modify", "opacity")),
        # only alternatives follow a link; a finding joined by "and" (or a comma without "or") is a separate one
        ("Consolidation in the right middle lobe concerning for pneumonia and small bilateral effusions.",
         ("consolidation", "suggestive_of", "pneumonia"), ("consolidation", "suggestive_of", "effusions")),
        ("Opacity in the right lower lobe, consistent with pneumonia, and left pleural effusion.",
         ("opacity", "suggestive_of", "pneumonia"), ("opacity", "suggestive_of", "pleural effusion")),
        ("Opacity concerning for pneumonia, small effusion.",
         ("opacity", "suggestive_of", "pneumonia"), ("opacity", "suggestive_of", "effusion")),
        # ... and each of them, also past a word that is no mention or a ranking hedge
        ("Left basilar opacity may represent atelectasis, aspiration, or pneumonia.",
         ("opacity", "suggestive_of", "pneumonia"), None),
        ("Opacity may represent atelectasis or less likely pneumonia.",
         ("opacity", "suggestive_of", "pneumonia"), ("atelectasis", "suggestive_of", "pneumonia")),
        # a bare hedge links only the finding it follows closely
        ("Opacity at the left base, likely atelectasis.", ("opacity", "suggestive_of", "atelectasis"), None),
        ("Mild cardiomegaly and likely small bilateral pleural effusions.",
         ("mild", "modify", "cardiomegaly"), ("cardiomegaly", "suggestive_of", "pleural effusions")),
        ("Pneumothorax is not seen, likely atelectasis at the left base.",
         ("atelectasis", "located_at", "left base"), ("pneumothorax", "suggestive_of", "atelectasis")),
        # "right" is a side of the place, not of the finding
        ("Right and left lower lobe opacities.", ("right", "modify", "left lower lobe"),
         ("right", "modify", "opacities")),
        # a differential after a comma: the finding suggests each alternative; they do not suggest each other
        ("Left basilar opacity, atelectasis versus pneumonia.", ("opacity", "suggestive_of", "pneumonia"),
         ("atelectasis", "suggestive_of", "pneumonia")),
        ("Left basilar opacity, atelectasis versus pneumonia.", ("opacity", "suggestive_of", "atelectasis"), None),
        ("Left basilar opacity, atelectasis or pneumonia.", ("opacity", "suggestive_of", "pneumonia"), None),
        ("Right lower lobe mass versus consolidation.", ("mass", "located_at", "right lower lobe"),
         ("mass", "suggestive_of", "consolidation")),
        # graph review round 2: a list's first alternative suggests nothing; a word before an alternative;
        # a whole list before ", consistent with"; "of" before a bare hedge; distances; numbered ribs
        ("Opacity could represent atelectasis, edema, or pneumonia.", ("opacity", "suggestive_of", "pneumonia"),
         ("atelectasis", "suggestive_of", "edema")),
        ("Left basilar opacity, atelectasis versus early pneumonia.", ("opacity", "suggestive_of", "pneumonia"),
         None),
        ("Edema and effusions, consistent with CHF.", ("edema", "suggestive_of", "chf"), None),
        ("Blunting of the left costophrenic angle, likely effusion.", ("blunting", "suggestive_of", "effusion"),
         None),
        ("ETT tip is 4 cm above the carina.", ("ett", "located_at", "carina"), None),
        ("Leads terminate in the right atrium and right ventricle.", ("leads", "located_at", "right ventricle"),
         None),
        ("Healed left 7th rib fracture.", ("fracture", "located_at", "left 7th rib"), ("left", "modify", "fracture")),
        ("Fractures of the left 5th and 6th ribs.", ("fractures", "located_at", "left 5th and 6th ribs"), None),
        ("Slight decrease in the left pleural effusion.", ("decrease in", "modify", "pleural effusion"), None),
        ("Left basilar opacity, atelectasis, edema, or pneumonia.", ("opacity", "suggestive_of", "edema"), None),
        # hilar and mediastinal places
        ("Right hilar mass.", ("mass", "located_at", "right hilar"), None),
        ("Left hilar mass.", ("mass", "located_at", "left hilar"), None),
        # graph review, 2026-11-24: a place that closes a clause; "in size of"; adjectives before alternatives;
        # placing predicates; new places
        ("Interval placement of a left chest tube with decrease in size of the left pneumothorax.",
         ("decrease in size", "modify", "pneumothorax"), ("decrease in size", "modify", "chest tube")),
        ("Opacity may represent edema or atypical pneumonia.", ("opacity", "suggestive_of", "pneumonia"), None),
        ("Consolidation is again seen in the left lower lobe.", ("consolidation", "located_at", "left lower lobe"),
         None),
        ("Pneumonia cannot be excluded in the right lower lobe.", ("pneumonia", "located_at", "right lower lobe"),
         None),
        ("Right PICC tip terminates in the low SVC.", ("picc", "located_at", "svc"), None),
        ("Swan-Ganz catheter tip in the right pulmonary artery.",
         ("catheter", "located_at", "right pulmonary artery"), None),
        ("Diffuse bilateral airspace opacities consistent with ARDS.",
         ("airspace opacities", "suggestive_of", "ards"), None),
    ],
)
def test_relations_in_real_sentences(text, present, absent):
    edges = _edges(text)
    assert present in edges
    assert absent is None or absent not in edges


def test_links_do_not_hide_hedges():
    g = parse("Opacity which is likely atelectasis.")
    assert {e.tokens.lower(): e.label for e in g.entities}["atelectasis"] == "OBS-U"


def test_no_duplicate_relations():
    g = parse("Opacity, edema versus ARDS versus multifocal pneumonia, likely edema.")
    rels = [(e.id, r, t) for e in g.entities for r, t in e.relations]
    assert len(rels) == len(set(rels)) == g.to_networkx().number_of_edges() > 0


@pytest.mark.parametrize("text", ["No acute findings.", "PA and lateral views of the chest were obtained.",
                                  "Stable appearance of the chest.", "PA and lateral views the chest were obtained.",
                                  "Emphysema without acute cardiopulmonary findings.",
                                  "Lateral view curvilinear densities over the heart.",
                                  "No significant change in pneumothorax."])
def test_a_modifier_that_qualifies_nothing_is_no_entity(text):
    # alone it read as a present observation ("acute" OBS-DP in a normal report)
    g = parse(text)
    assert [e.tokens for e in g.entities if e.modifier] == []
    assert all(r[1] in {e.id for e in g.entities} for e in g.entities for r in e.relations)


def test_an_absent_finding_suggests_nothing():
    # "no opacity concerning for pneumonia"
    mentions = [Mention(1, 2, "observation", ("Opacity",)), Mention(4, 5, "observation", ("Pneumonia",))]
    trig = [Trigger(2, 4, frozenset({("suggestive",)}))]
    assert find_relations(mentions, [0, 0], trig, [0]) == [(0, "suggestive_of", 1)]
    assert find_relations(mentions, [0, 0], trig, [0], absent={0}) == []


def test_one_list_of_alternatives_has_no_evidence_among_them():
    assert _edges("Atelectasis, aspiration, or pneumonia.") == set()  # atelectasis suggested the other two


def test_the_place_of_an_absent_finding_stays_absent():
    # a side that closes a place ("on the left,") qualifies the finding before it, not the next one
    g = parse("No pleural effusion on the left, small right pleural effusion.")
    ids = {e.id: e for e in g.entities}
    left = next(e for e in g.entities if e.tokens == "left")
    assert left.label == "OBS-DA" and [ids[t].label for _, t in left.relations] == ["OBS-DA"]


def test_a_fronted_side_still_qualifies_the_finding_after_it():
    assert ("left", "modify", "pleural effusion") in _edges("On the left, small pleural effusion.")


def test_atypical_for_is_no_modifier():
    g = parse("Appearance is atypical for pneumonia.")
    assert [e.tokens for e in g.entities if e.modifier] == []


def test_a_modifier_before_a_comparison_still_qualifies_the_finding():
    # "unchanged from comparison exam": the exam is where it is compared, not what is unchanged
    ents = {e.tokens: e for e in parse("The left chest pacemaker is unchanged from comparison exam.").entities}
    assert ("modify", ents["pacemaker"].id) in ents["unchanged"].relations


def test_place_modifiers_are_the_lexicons_laterality_words():
    from radlabel.mentions import load_lexicon
    from radlabel.phrases import expand_phrase
    from radlabel.relations import PLACE_MODIFIERS

    line = next(p for p in load_lexicon()["modifiers"] if "bibasilar" in p)
    assert set(expand_phrase(line)) == PLACE_MODIFIERS


@pytest.mark.parametrize("text", ["Right IJ catheter with tip in the SVC.",
                                  "Left PICC with its tip at the cavoatrial junction."])
def test_a_device_with_its_tip_somewhere_is_located_there(text):
    ents = parse(text).entities
    device = next(e for e in ents if e.label == "OBS-DP" and "Support Devices" in e.classes)
    place = next(e for e in ents if e.label == "ANAT-DP")
    assert ("located_at", place.id) in device.relations
    assert parse("Effusion with atelectasis in the left lower lobe.").entities[0].relations == []  # "with" still joins
