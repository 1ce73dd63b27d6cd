"""Phrase patterns: ``"(heart|cardiac silhouette) (is)? enlarged"`` written out as the plain phrases it stands for.

Plain text work with no spaCy, so a schema file can be checked (`radlabel.schema`) without loading the matchers.
"""

from __future__ import annotations

import re

from radlabel.errors import RadlabelError

__all__ = ["MAX_EXPANSIONS", "expand_phrase"]

MAX_EXPANSIONS = 20000
_GLUED_GROUP = re.compile(r"[^\W_]\(|\)\??[^\W_]")  # a letter or digit against a group: "arter(y|ies)", "(a|b)c"


def expand_phrase(pattern: str) -> list[str]:
    """All phrases a pattern stands for: ``"(a|b) c (d)?"`` -> ``["a c d", "a c", "b c d", "b c"]``.

    A word ending in ``?`` has an optional last letter: ``"signs?"`` -> ``["signs", "sign"]``.
    Groups may nest: ``"fluid in the (pleural space|(minor|major)? fissure)"``.
    """
    if pattern.count("(") != pattern.count(")"):
        raise RadlabelError(f"Phrase pattern {pattern!r} has unbalanced parentheses.")
    if _GLUED_GROUP.search(pattern):
        # "underpenetrat(ion|ed)" expanded to "underpenetrat ion", a phrase no report has: groups hold whole words
        raise RadlabelError(f"Phrase pattern {pattern!r} has a group joined to a word; groups hold whole words "
                            "('(artery|arteries)', not 'arter(y|ies)').")
    pos = 0

    def seq() -> list[str]:
        # A sequence of words and groups up to "|" or ")" -> its expansions.
        nonlocal pos
        results = [""]
        while pos < len(pattern) and pattern[pos] not in "|)":
            ch = pattern[pos]
            if ch.isspace():
                pos += 1
                continue
            if ch == "(":
                pos += 1
                options = seq_alternatives()
                if pos < len(pattern) and pattern[pos] == "?":
                    pos += 1
                    options = [*options, ""]
            else:
                j = pos
                while j < len(pattern) and not pattern[j].isspace() and pattern[j] not in "()|":
                    j += 1
                word = pattern[pos:j]
                # "signs?": a trailing "?" makes the word's last letter optional (a lone "?" is literal).
                options = [word[:-1], word[:-2]] if len(word) > 2 and word[-1] == "?" else [word]
                pos = j
            results = [f"{r} {o}".strip() for r in results for o in options]
            if len(results) > MAX_EXPANSIONS:
                raise RadlabelError(
                    f"Phrase pattern {pattern!r} expands to more than {MAX_EXPANSIONS} phrases; split it."
                )
        return results

    def seq_alternatives() -> list[str]:
        nonlocal pos
        alts = seq()
        while pos < len(pattern) and pattern[pos] == "|":
            pos += 1
            alts.extend(seq())
        if pos >= len(pattern) or pattern[pos] != ")":
            raise RadlabelError(f"Phrase pattern {pattern!r} has unbalanced parentheses.")
        pos += 1
        return alts

    out = seq()
    if pos != len(pattern):
        raise RadlabelError(f"Phrase pattern {pattern!r} has a '|' or ')' outside a group.")
    phrases = list(dict.fromkeys(" ".join(p.split()) for p in out if p.strip()))
    if not phrases:  # "()" or "( | )": a class that could never be found
        raise RadlabelError(f"Phrase pattern {pattern!r} stands for no phrase; give it at least one word.")
    return phrases
