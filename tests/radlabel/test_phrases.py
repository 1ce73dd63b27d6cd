import pytest

from radlabel.errors import RadlabelError
from radlabel.phrases import expand_phrase


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

