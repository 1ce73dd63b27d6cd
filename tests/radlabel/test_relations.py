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
