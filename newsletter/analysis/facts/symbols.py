"""Changed symbols: definitions a commit added, removed, renamed, re-signed or modified, per file.

Each hunk is rebuilt twice, its old side (context and removed lines) and its new side (context and
added lines); each side is parsed as a fragment and its definitions read. Definitions of one file
are then compared by qualified name across sides: only on the old side is removed, only on the new
one is added (a removed and an added one with the same parameters and a similar body is a rename),
on both with another signature is a signature change, and on both with a changed line inside is
modified. Changed lines outside every definition are put on the symbol the hunk header names.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .definitions import Definition, Param, read_definitions
from .diff import ADDED, CONTEXT, REMOVED, Hunk, clean
from .grammars import fragment_source, grammar_for, parse
from .record import SymbolChange
from .roles import is_header

# Past this much patch text a file is not parsed for symbols: a generated or bulk change says
# little through its symbols, and parsing it would cost more than the whole rest of a commit.
MAX_PATCH_CHARS = 200_000
_SIGNATURE_CHARS = 160
_STATIC = {"go", "rust", "java", "c", "cpp"}
_SHAPE = re.compile(r"\s+")
_TRAILING_COMMA = re.compile(r",([)\]}>])")
_IMPLICIT = {"self", "cls", "this", "*", "/"}
_COMMENT = re.compile(r"^\s*(?:#|//|/\*|\*|--)")


@dataclass
class _Seen:
    """A definition on one side of one hunk, and whether a changed line of that side is in it."""

    definition: Definition
    touched: bool


@dataclass(frozen=True)
class _Header:
    """What a hunk header says about where the hunk is."""

    kind: str | None = None
    name: str | None = None
    owner: str | None = None
    is_class: bool = False
    exported: bool = False
    public: bool = False

    @property
    def qualified(self) -> str | None:
        if not self.name:
            return None
        return f"{self.owner}.{self.name}" if self.owner else self.name


_HEADER_PATTERNS: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "python": [(re.compile(r"^(?P<indent>\s*)class\s+(?P<name>\w+)"), "class"),
               (re.compile(r"^(?P<indent>\s*)(?:async\s+)?def\s+(?P<name>\w+)"), "function")],
    "script": [(re.compile(r"^\s*(?P<export>export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?"
                           r"class\s+(?P<name>\w+)"), "class"),
               (re.compile(r"^\s*(?P<export>export\s+)?(?:default\s+)?interface\s+(?P<name>\w+)"), "interface"),
               (re.compile(r"^\s*(?P<export>export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(?P<name>\w+)"),
                "function"),
               (re.compile(r"^\s*(?P<export>export\s+)?(?:const|let|var)\s+(?P<name>\w+)\s*=\s*(?:async\s*)?"
                           r"(?:\(|function|\w+\s*=>)"), "function"),
               (re.compile(r"^\s+(?:(?:public|private|protected|static|async|readonly|override|get|set)\s+)*"
                           r"(?P<name>[A-Za-z_$][\w$]*)\s*\([^)]*\)?\s*(?::[^{]*)?\{?\s*$"), "method")],
    "go": [(re.compile(r"^func\s+\(\s*\w*\s*\*?\s*(?P<owner>\w+)(?:\[[^\]]*\])?\s*\)\s*(?P<name>\w+)"), "method"),
           (re.compile(r"^func\s+(?P<name>\w+)"), "function"),
           (re.compile(r"^type\s+(?P<name>\w+)\s+struct\b"), "struct"),
           (re.compile(r"^type\s+(?P<name>\w+)\s+interface\b"), "interface")],
    "rust": [(re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?impl\b(?:<.*?>)?\s+(?:[\w:]+(?:<.*?>)?\s+for\s+)?"
                         r"(?:\w+::)*(?P<name>\w+)"), "impl"),
             (re.compile(r"^\s*(?P<pub>pub\s+)?(?:(?:async|const|unsafe|extern\s+\"[^\"]*\")\s+)*fn\s+(?P<name>\w+)"),
              "function"),
             (re.compile(r"^\s*(?P<pub>pub\s+)?(?:struct|union)\s+(?P<name>\w+)"), "struct"),
             (re.compile(r"^\s*(?P<pub>pub\s+)?enum\s+(?P<name>\w+)"), "enum"),
             (re.compile(r"^\s*(?P<pub>pub\s+)?trait\s+(?P<name>\w+)"), "trait")],
    "java": [(re.compile(r"^\s*(?P<pub>(?:public\s+)?)(?:(?:@\w+|abstract|final|static|sealed|protected|private)\s+)*"
                         r"(?:class|record)\s+(?P<name>\w+)"), "class"),
             (re.compile(r"^\s*(?P<pub>(?:public\s+)?)(?:\w+\s+)*(?:interface|@interface)\s+(?P<name>\w+)"), "interface"),
             (re.compile(r"^\s*(?P<pub>(?:public\s+)?)(?:\w+\s+)*enum\s+(?P<name>\w+)"), "enum"),
             (re.compile(r"^\s*(?P<pub>(?:public\s+|protected\s+)?)(?:(?:static|final|abstract|synchronized|native|default)"
                         r"\s+)*(?:<[^>]*>\s+)?[\w<>\[\],.?]+(?:\s*<[^>]*>)?\s+(?P<name>\w+)\s*\("), "method")],
    "c": [(re.compile(r"^\s*(?:template\s*<.*>\s*)?(?:class|struct)\s+(?:\w+\s+)*?(?P<name>\w+)\s*(?:final\s*)?"
                      r"(?::[^:]|\{|$)"), "class"),
          (re.compile(r"^\s*(?:[\w:*&<>,]+\s+)+\**(?:(?P<owner>\w+)::)?(?P<name>~?\w+)\s*\("), "function")],
}
# A hunk none of whose lines matches its language's hint holds no definition start, so it is not
# parsed: its changed lines go to the symbol its header names. Most hunks of a commit edit bodies
# only, and parsing is most of the cost. (C and C++ declarations have no keyword: always parsed.)
_DEFINITION_HINTS = {
    "python": re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]", re.MULTILINE),
    "go": re.compile(r"^[ \t]*(?:func|type)\b|^[ \t]*\w+[ \t]*\(|^\t\w+\s+(?:struct|interface)\b", re.MULTILINE),
    "rust": re.compile(r"\b(?:fn|struct|enum|trait|impl|type|union)\b"),
    "script": re.compile(r"\b(?:function|class|interface|type|enum|namespace)\b|=>"
                         r"|^[ \t]*(?:(?:public|private|protected|static|async|get|set|readonly|override|abstract)[ \t]+)*"
                         r"[#\w$]+[ \t]*(?:<[^>]*>)?\(", re.MULTILINE),
    "java": re.compile(r"\b(?:class|interface|enum|record)\b|^[ \t]*(?:@\w+[ \t]*)*[\w<>\[\],.?]+(?:[ \t]+[\w<>\[\],.?]+)*"
                       r"[ \t]+\w+[ \t]*\([^;]*$", re.MULTILINE),
}
_GRAMMAR_FAMILY = {"javascript": "script", "typescript": "script", "tsx": "script", "cpp": "c"}
_CLASS_KINDS = {"class", "impl", "struct", "interface", "trait", "enum"}


def _header(text: str, grammar: str, filename: str) -> _Header:
    """The symbol a hunk header names, if its language's patterns recognise one."""
    for pattern, kind in _HEADER_PATTERNS.get(_GRAMMAR_FAMILY.get(grammar, grammar), []):
        found = pattern.match(text)
        if not found:
            continue
        groups = found.groupdict()
        name = groups["name"]
        if kind == "function" and grammar in ("c", "cpp") and name in ("if", "for", "while", "switch", "return"):
            return _Header()
        owner = groups.get("owner")
        if grammar == "python" and kind == "function" and groups.get("indent"):
            kind = "method"
        if kind == "function" and owner:
            kind = "method"
        if grammar == "python":
            public = not name.startswith("_") or name.endswith("__")
        elif grammar == "go":
            public = name[:1].isupper() and (owner is None or owner[:1].isupper())
        elif grammar in ("c", "cpp"):
            public = is_header(filename) and not name.startswith("_")
        elif grammar in ("rust", "java"):
            public = bool(groups.get("pub"))
        else:
            public = bool(groups.get("export"))
        return _Header(kind=kind, name=name, owner=owner, is_class=kind in _CLASS_KINDS,
                       exported=bool(groups.get("export")), public=public)
    return _Header()


def _shape(signature: str) -> str:
    """A signature with formatting taken out, so re-wrapping one is not a change."""
    return _TRAILING_COMMA.sub(r"\1", _SHAPE.sub("", signature))


def _side(hunk: Hunk, tag: str, grammar: str, header: _Header, public_path: bool, header_file: bool
          ) -> tuple[list[_Seen], bool]:
    """The definitions on one side of a hunk, and whether some changed line lies outside all of them."""
    side = hunk.side(tag)
    # A blank line added or removed between definitions touches none of them.
    changed_rows = [row for row, (_i, text, changed) in enumerate(side) if changed and text.strip()]
    if not side:
        return [], False
    whole = hunk.old_start == 0 or hunk.new_start == 0  # git's -0,0 / +0,0: the file is added or removed
    root = parse(grammar, fragment_source([text for _i, text, _c in side], grammar, whole=whole))
    if root is None:
        return [], bool(changed_rows)
    definitions = read_definitions(
        root, grammar, public_path=public_path, header_class=header.name if header.is_class else None,
        header_is_function=bool(header.name) and not header.is_class, header_file=header_file,
        header_exported=header.exported,
    )
    # The innermost definition of each row: outer ones first, inner ones overwrite them.
    owner: dict[int, int] = {}
    order = sorted(range(len(definitions)), key=lambda i: definitions[i].start - definitions[i].end)
    for index in order:
        for row in range(definitions[index].start, definitions[index].end + 1):
            owner[row] = index
    touched = {owner[row] for row in changed_rows if row in owner}
    # A changed comment between definitions (often the doc comment of the next one) names no symbol.
    outside = any(row not in owner and not _COMMENT.match(side[row][1]) for row in changed_rows)
    return [_Seen(d, i in touched) for i, d in enumerate(definitions)], outside


def _types(params: tuple[Param, ...]) -> list[str]:
    return [_SHAPE.sub(" ", p.type).strip() for p in params if p.name not in _IMPLICIT]


def _same_types(old: tuple[Param, ...], new: tuple[Param, ...]) -> bool:
    return [_SHAPE.sub("", t) for t in _types(old)] == [_SHAPE.sub("", t) for t in _types(new)]


def compare_signatures(old: Definition, new: Definition, language: str) -> tuple[bool, str | None]:
    """Whether callers of old break with new, and a short description of what changed."""
    parts: list[str] = []
    breaking = False
    static = language in _STATIC
    old_params = [p for p in old.params if p.name not in _IMPLICIT]
    new_params = [p for p in new.params if p.name not in _IMPLICIT]
    if static:
        # Callers pass arguments by position: names do not matter, types and count do.
        if not _same_types(old.params, new.params):
            parts.append(f"parameters ({', '.join(_types(old.params))}) → ({', '.join(_types(new.params))})")
            breaking = True
        for o, n in zip(old_params, new_params, strict=False):
            if o.default != n.default and o.default is not None and n.default is not None:
                parts.append(f"{n.name} default {o.default} → {n.default}")
    else:
        old_by_name = {p.name: p for p in old_params}
        new_by_name = {p.name: p for p in new_params}
        for p in old_params:
            if p.name not in new_by_name:
                parts.append(f"removes parameter {p.name}")
                breaking = True
        for p in new_params:
            previous = old_by_name.get(p.name)
            if previous is None:
                parts.append(f"adds {'optional ' if p.optional else 'required '}parameter {p.name}")
                breaking = breaking or not p.optional
                continue
            if previous.default != p.default:
                if previous.default is not None and p.default is not None:
                    parts.append(f"{p.name} default {previous.default} → {p.default}")
                elif p.default is None and not p.optional:
                    parts.append(f"{p.name} no longer optional")
                    breaking = True
                elif previous.default is None:
                    parts.append(f"{p.name} now optional")
        common_old = [p.name for p in old_params if p.name in new_by_name and not p.variadic]
        common_new = [p.name for p in new_params if p.name in old_by_name and not p.variadic]
        if common_old != common_new:
            parts.append("reorders parameters")
            breaking = True
        if not _same_types(old.params, new.params) and not parts:
            parts.append("parameter types changed")
    if _SHAPE.sub("", old.returns) != _SHAPE.sub("", new.returns):
        parts.append(f"returns {old.returns or '(none)'} → {new.returns or '(none)'}" if static
                     else "return annotation changed")
        breaking = breaking or static
    old_async, new_async = bool(re.search(r"\basync\b", old.signature)), bool(re.search(r"\basync\b", new.signature))
    if old_async != new_async:
        parts.append("now async" if new_async else "no longer async")
        breaking = True
    if old.public and not new.public:
        parts.append("no longer public")
        breaking = True
    if old.trait_impl:
        breaking = False  # the trait decides; its own change is reported where it is declared
    return breaking, clean("; ".join(parts), 160) or None


def _similar(a: str, b: str) -> float:
    """How alike two bodies are, line by line (a renamed function keeps its lines)."""
    if not a and not b:
        return 1.0
    old = [line.strip() for line in a.splitlines()[:200] if line.strip()]
    new = [line.strip() for line in b.splitlines()[:200] if line.strip()]
    if not old and not new:
        return 1.0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    quick = matcher.quick_ratio()  # an upper bound, far cheaper than ratio()
    return matcher.ratio() if quick >= 0.6 else quick


def _pair_renames(removed: list[Definition], added: list[Definition]) -> list[tuple[Definition, Definition]]:
    """Removed and added definitions that are one renamed: same kind, owner and parameters, similar body."""
    def shape(definition: Definition) -> tuple[str, str | None, list[tuple[str, str | None, str]]]:
        return definition.kind, definition.parent, [(p.name, p.default, p.type) for p in definition.params]

    pairs: list[tuple[Definition, Definition]] = []
    free = list(added)
    for old in removed:
        candidates = [n for n in free if shape(n) == shape(old)]
        if not candidates:
            continue
        if not old.body and not any(n.body for n in candidates):
            # Declarations without bodies (prototypes, interface methods): only a one-to-one match.
            if len(candidates) == 1 and sum(1 for o in removed if shape(o) == shape(old)) == 1:
                pairs.append((old, candidates[0]))
                free.remove(candidates[0])
            continue
        score, best = max((_similar(old.body, n.body), i) for i, n in enumerate(candidates))
        if score >= 0.6:
            pairs.append((old, candidates[best]))
            free.remove(candidates[best])
    return pairs


def _signature(text: str) -> str:
    return clean(text, _SIGNATURE_CHARS)


def file_symbols(filename: str, language: str, hunks: list[Hunk], *, public_path: bool) -> list[SymbolChange]:
    """The symbols a file's hunks change; [] for languages without a grammar or oversized patches."""
    grammar = grammar_for(language, filename)
    if grammar is None or not hunks:
        return []
    if sum(len(text) for hunk in hunks for _kind, text in hunk.lines) > MAX_PATCH_CHARS:
        return []
    header_file = is_header(filename)
    old: dict[str, list[_Seen]] = {}
    new: dict[str, list[_Seen]] = {}
    named: dict[str, _Header] = {}
    hint = _DEFINITION_HINTS.get(_GRAMMAR_FAMILY.get(grammar, grammar))
    for hunk in hunks:
        header = _header(hunk.header, grammar, filename)
        if hint is not None and not hint.search("\n".join(text for _kind, text in hunk.lines)):
            if header.qualified and any(kind != CONTEXT and text.strip() and not _COMMENT.match(text)
                                        for kind, text in hunk.lines):
                named.setdefault(header.qualified, header)
            continue
        outside = False
        for tag, found in ((REMOVED, old), (ADDED, new)):
            seen, stray = _side(hunk, tag, grammar, header, public_path, header_file)
            outside = outside or stray
            for item in seen:
                found.setdefault(item.definition.qualified, []).append(item)
        if outside and header.qualified:
            named.setdefault(header.qualified, header)

    file, changes = clean(filename, 200), []
    removed: list[Definition] = []
    added: list[Definition] = []

    def change(definition: Definition, what: str, *, public: bool | None = None, breaking: bool = False,
               detail: str | None = None, old_name: str | None = None, old_signature: str | None = None,
               new_signature: str | None = None) -> SymbolChange:
        return SymbolChange(
            file=file, language=language, kind=definition.kind, name=clean(definition.qualified, 120), change=what,
            public=definition.public if public is None else public, breaking=breaking, old_name=old_name,
            old_signature=old_signature, new_signature=new_signature, detail=detail,
        )

    for name in list(old) + [n for n in new if n not in old]:
        olds, news = old.get(name, []), new.get(name, [])
        for before, after in zip(olds, news, strict=False):
            o, n = before.definition, after.definition
            if _shape(o.signature) != _shape(n.signature):
                breaking, detail = compare_signatures(o, n, language)
                changes.append(change(n, "signature", breaking=breaking and o.public, detail=detail,
                                      old_signature=_signature(o.signature), new_signature=_signature(n.signature)))
            elif before.touched or after.touched:
                changes.append(change(n, "modified"))
        removed.extend(seen.definition for seen in olds[len(news):])
        added.extend(seen.definition for seen in news[len(olds):])

    renames = _pair_renames(removed, added)
    renamed_old = {id(o) for o, _n in renames}
    renamed_new = {id(n) for _o, n in renames}
    for o, n in renames:
        changes.append(change(n, "renamed", public=o.public or n.public, breaking=o.public,
                              old_name=clean(o.qualified, 120), old_signature=_signature(o.signature),
                              new_signature=_signature(n.signature)))
    for definition in removed:
        if id(definition) not in renamed_old:
            changes.append(change(definition, "removed", breaking=definition.public,
                                  old_signature=_signature(definition.signature)))
    for definition in added:
        if id(definition) not in renamed_new:
            changes.append(change(definition, "added", new_signature=_signature(definition.signature)))

    reported = {c.name for c in changes} | {clean(o.qualified, 120) for o, _n in renames}
    for qualified, header in named.items():
        if clean(qualified, 120) in reported:
            continue
        if qualified in new or qualified in old:
            # Its definition line is in another hunk; this hunk changes its body.
            changes.append(change((new.get(qualified) or old[qualified])[0].definition, "modified"))
            continue
        kind = {"impl": "struct"}.get(header.kind or "", header.kind or "function")
        changes.append(SymbolChange(file=file, language=language, kind=kind, name=clean(qualified, 120),
                                    change="modified", public=header.public and public_path))
    return changes
