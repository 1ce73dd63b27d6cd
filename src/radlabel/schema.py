"""Label schemas as data: which classes exist and which phrases mention them.

A schema is a YAML file (read with ``yaml.safe_load``)::

    name: chexpert
    no_finding: No Finding            # optional; the class set when nothing pathological is found
    no_finding_ignore: [Support Devices]
    classes:
      - name: Pneumothorax
        mentions: [pneumothorax, "(apical|basilar)? pneumothorax"]
        unmentions: []                # phrases that contain a mention but do not count
        absent_phrases: []            # phrases that by themselves say the class is absent
        parent: null

Phrases may use ``(a|b)`` for alternatives and ``(a|b)?`` for optional words; they are expanded
by :mod:`radlabel.mentions`. Built-in schemas live in ``radlabel/schemas/*.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from radlabel.errors import RadlabelError
from radlabel.phrases import expand_phrase

__all__ = ["ClassSpec", "Schema", "is_builtin_schema", "list_schemas", "load_schema", "schema_from_dict"]

_BUILTIN_DIR = Path(__file__).resolve().parent / "schemas"
_TOP_KEYS = {"name", "classes", "no_finding", "no_finding_ignore", "no_finding_rule", "other_findings_from", "description"}
# A schema file's own classes are rarely all the findings a report can assert: by default the built-in schemas'
# findings that it does not name count as other findings (no class value, but not No Finding under "strict").
DEFAULT_OTHER_FINDINGS_FROM = ("chexpert", "chestxray14")
# What keeps a report from being No Finding: "strict", any finding, also one no class names (a hiatal hernia, a
# granuloma, a differential), as curated corpora (IU X-ray's "normal") count it; "chexpert", only the schema's
# classes present or uncertain, as the CheXpert labeler counts it.
NO_FINDING_RULES = ("strict", "chexpert")
_CLASS_KEYS = {"name", "mentions", "unmentions", "absent_phrases", "parent"}


@dataclass(frozen=True)
class ClassSpec:
    """One output class and the phrases that mention it."""

    name: str
    mentions: tuple[str, ...]
    unmentions: tuple[str, ...]
    absent_phrases: tuple[str, ...] = ()
    parent: str | None = None


@dataclass(frozen=True)
class Schema:
    """A named set of classes; ``class_names`` is the output column order."""

    name: str
    classes: tuple[ClassSpec, ...]
    no_finding: str | None
    no_finding_ignore: tuple[str, ...]
    no_finding_rule: str = "strict"  # see NO_FINDING_RULES
    #: built-in schemas whose classes (but those in their no_finding_ignore) are other findings here
    other_findings_from: tuple[str, ...] = DEFAULT_OTHER_FINDINGS_FROM

    @property
    def class_names(self) -> list[str]:
        """Output columns: the No Finding class first (as CheXpert), then the classes in file order."""
        names = [c.name for c in self.classes]
        return [self.no_finding, *names] if self.no_finding else names

    @cached_property
    def parent_of(self) -> dict[str, str | None]:
        """Class name -> its parent class name (None at the top). Cached on the instance: hashing a whole
        frozen Schema for a lookup table cost about 2% of labelling time."""
        return {c.name: c.parent for c in self.classes}


def list_schemas() -> list[str]:
    """Names of the built-in schemas."""
    return sorted(p.stem for p in _BUILTIN_DIR.glob("*.yaml"))


@lru_cache(maxsize=1)
def _builtin_names() -> frozenset[str]:
    return frozenset(list_schemas())  # the package's own files: listing them on every parse() cost ~10 us


def is_builtin_schema(schema: Any) -> bool:
    """Whether `schema` is the name of a built-in schema ("chexpert"), not a file or a Schema."""
    return isinstance(schema, str) and schema in _builtin_names()


def load_schema(schema: str | Path | Schema) -> Schema:
    """A :class:`Schema` from a built-in name, a YAML path, or an existing Schema (returned as is)."""
    if isinstance(schema, Schema):
        return schema
    if not isinstance(schema, str | Path):
        raise RadlabelError(
            f"schema must be a built-in name ({', '.join(list_schemas())}), a path to a .yaml file "
            f"or a Schema, not {type(schema).__name__}."
        )
    text = str(schema)
    builtin = _BUILTIN_DIR / f"{text}.yaml"
    if isinstance(schema, str) and "/" not in text and "\\" not in text and builtin.is_file():
        path = builtin
    elif text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise RadlabelError(f"Schema file {path} does not exist.")
    else:
        names = list_schemas()
        close = difflib.get_close_matches(text, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RadlabelError(
            f"Unknown schema {text!r}; choose one of {', '.join(names)} or a path to a .yaml file.{hint}"
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SchemaLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as exc:
        raise RadlabelError(f"Schema file {path} gives the key {exc.key!r} twice (lines {exc.lines[0]} and "
                            f"{exc.lines[1]}); keep one and merge their phrases.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RadlabelError(f"Schema file {path} is not valid YAML{where}.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RadlabelError(f"Schema file {path} cannot be read ({exc.__class__.__name__}).") from exc
    return schema_from_dict(data, source=str(path))


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, lines: tuple[int, int]):
        super().__init__(f"key {key!r} twice, lines {lines}")
        self.key, self.lines = key, lines


class _SchemaLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error: PyYAML keeps the last one
    silently, so a class's first `mentions:` list would be lost."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":  # merge keys may repeat
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise _DuplicateKey(key_node.value, (seen[key_node.value], line))
                seen[key_node.value] = line
        return super().construct_mapping(node, deep)


def _strings(value: Any, key: str, source: str, required: bool = False, phrases: bool = False) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RadlabelError(f"Key {key!r} in schema {source} must be a list of non-empty strings.")
    if required and not value:
        raise RadlabelError(f"Key {key!r} in schema {source} must list at least one phrase.")
    if phrases:  # a broken pattern is named with its key and file here, not later by the matcher
        for v in value:
            try:
                expand_phrase(v.strip())
            except RadlabelError as exc:
                raise RadlabelError(f"Key {key!r} in schema {source}: {exc}") from None
    return tuple(v.strip() for v in value)


def _unknown_key(keys: set, allowed: set, where: str, source: str) -> None:
    extra = sorted(str(k) for k in keys - allowed)
    if extra:
        close = difflib.get_close_matches(extra[0], sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RadlabelError(
            f"Unknown key {extra[0]!r}{hint} in {where} of schema {source}; "
            f"valid keys are {', '.join(sorted(allowed))}."
        )


def schema_from_dict(data: Any, source: str = "<dict>") -> Schema:
    """Validate a parsed YAML mapping and build a :class:`Schema` (errors name the key and source)."""
    if not isinstance(data, dict):
        raise RadlabelError(f"Schema {source} must be a mapping with keys 'name' and 'classes'.")
    _unknown_key(set(data), _TOP_KEYS, "the top level", source)
    for key in ("name", "classes"):
        if key not in data:
            raise RadlabelError(f"Schema {source} is missing the required key {key!r}.")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise RadlabelError(f"Key 'name' in schema {source} must be a non-empty string.")
    raw_classes = data["classes"]
    if not isinstance(raw_classes, list) or not raw_classes:
        raise RadlabelError(f"Key 'classes' in schema {source} must be a non-empty list of mappings.")
    classes: list[ClassSpec] = []
    for i, c in enumerate(raw_classes):
        if not isinstance(c, dict):
            raise RadlabelError(f"Entry {i + 1} of 'classes' in schema {source} must be a mapping.")
        _unknown_key(set(c), _CLASS_KEYS, f"class entry {i + 1}", source)
        cname = c.get("name")
        if not isinstance(cname, str) or not cname.strip():
            raise RadlabelError(f"Class entry {i + 1} in schema {source} needs a non-empty string 'name'.")
        if cname == "error":  # the labels' status column
            raise RadlabelError(f"Class name 'error' in schema {source} is reserved for the labels' status column; "
                                "choose another name.")
        if "mentions" not in c:
            raise RadlabelError(f"Class {cname!r} in schema {source} is missing the required key 'mentions'.")
        parent = c.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise RadlabelError(f"Key 'parent' of class {cname!r} in schema {source} must be a string.")
        classes.append(
            ClassSpec(
                name=cname.strip(),
                mentions=_strings(c.get("mentions"), f"{cname}.mentions", source, required=True, phrases=True),
                unmentions=_strings(c.get("unmentions"), f"{cname}.unmentions", source, phrases=True),
                absent_phrases=_strings(c.get("absent_phrases"), f"{cname}.absent_phrases", source, phrases=True),
                parent=parent,
            )
        )
    names = [c.name for c in classes]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise RadlabelError(f"Class name {n!r} appears more than once in schema {source}.")
        seen.add(n)
    for c in classes:
        if c.parent is not None and c.parent not in seen:
            raise RadlabelError(
                f"Class {c.name!r} in schema {source} has unknown parent {c.parent!r}; "
                f"valid parents are {', '.join(names)}."
            )
    parents = {c.name: c.parent for c in classes}
    for c in classes:  # a parent chain must end: A -> B -> A would loop when labels are propagated
        chain, node = [c.name], c.parent
        while node is not None:
            if node in chain:
                raise RadlabelError(f"Classes in schema {source} form a parent cycle: {' -> '.join([*chain, node])}.")
            chain.append(node)
            node = parents[node]
    no_finding = data.get("no_finding")
    if no_finding is not None and (not isinstance(no_finding, str) or not no_finding.strip()):
        raise RadlabelError(f"Key 'no_finding' in schema {source} must be a class name string or null.")
    no_finding = no_finding.strip() if no_finding is not None else None  # a column name, as class names are
    if no_finding == "error":
        raise RadlabelError(f"Key 'no_finding' in schema {source} names 'error', which is reserved for the labels' "
                            "status column; choose another name.")
    if no_finding in seen:
        raise RadlabelError(
            f"Key 'no_finding' in schema {source} names {no_finding!r}, which must not also be listed in 'classes'."
        )
    ignore = _strings(data.get("no_finding_ignore"), "no_finding_ignore", source)
    for n in ignore:
        if n not in seen:
            raise RadlabelError(
                f"Key 'no_finding_ignore' in schema {source} names unknown class {n!r}; "
                f"valid classes are {', '.join(names)}."
            )
    rule = data.get("no_finding_rule", "strict")
    check_no_finding_rule(rule, f"Key 'no_finding_rule' in schema {source}")
    return Schema(name=name.strip(), classes=tuple(classes), no_finding=no_finding, no_finding_ignore=ignore,
                  no_finding_rule=rule, other_findings_from=_other_findings_from(data, source))


def _other_findings_from(data: dict, source: str) -> tuple[str, ...]:
    value = data.get("other_findings_from", list(DEFAULT_OTHER_FINDINGS_FROM))
    if value is None:
        return ()
    valid = list_schemas()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RadlabelError(f"Key 'other_findings_from' in schema {source} must be a list of built-in schema names "
                            f"({', '.join(valid)}), or [] for none.")
    for v in value:
        if v not in valid:
            raise RadlabelError(f"Key 'other_findings_from' in schema {source} names {v!r}, which is not a built-in "
                                f"schema; choose from {', '.join(valid)}, or [] for none.")
    return tuple(dict.fromkeys(value))


def check_no_finding_rule(rule: Any, what: str = "no_finding_rule") -> None:
    """A RadlabelError naming the valid rules unless ``rule`` is one of `NO_FINDING_RULES`."""
    if rule not in NO_FINDING_RULES:
        raise RadlabelError(f"{what} must be one of {', '.join(NO_FINDING_RULES)}, not {rule!r}.")


def with_no_finding_rule(schema: Schema, rule: str | None) -> Schema:
    """``schema`` with its No Finding rule replaced (None keeps the schema's own)."""
    if rule is None:
        return schema
    if not schema.no_finding:
        raise RadlabelError(f"Schema {schema.name!r} has no No Finding class, so a no_finding rule ({rule!r}) has "
                            "nothing to decide; leave it out, or add `no_finding:` to the schema.")
    if rule == schema.no_finding_rule:
        return schema
    check_no_finding_rule(rule, "no_finding")
    return dataclasses.replace(schema, no_finding_rule=rule)


def schema_cache_key(schema: Any) -> Any:
    """What a schema argument is cached under: a YAML file's path with its size and modification time (an edited
    file is another schema; keyed on its path alone, the old matchers labelled the new classes), else itself."""
    if isinstance(schema, str | Path) and not is_builtin_schema(schema):
        path = Path(schema).expanduser()
        try:
            st = path.stat()
        except OSError:
            return str(schema)  # loading it will say what is wrong
        return str(path.resolve()), st.st_mtime_ns, st.st_size
    return schema
