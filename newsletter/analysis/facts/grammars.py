"""Tree-sitter parsers for the languages facts read, and hunk fragments made parseable.

The grammars come from their own PyPI wheels (tree-sitter-python, tree-sitter-go, ...), which carry
the compiled grammar: nothing is downloaded at run time. A hunk's side is a fragment of a file: it
may start inside a body, a block comment or a docstring and end with blocks left open. Tree-sitter
recovers from errors, but a stray closing brace or an unclosed docstring can swallow what follows,
so `fragment_source` blanks what cannot be placed and closes what is left open, keeping line numbers.
"""
from __future__ import annotations

import re
import threading

from tree_sitter import Language, Node, Parser

_LOCAL = threading.local()  # a Parser is not safe to share between threads


def _load(grammar: str) -> object:
    """The grammar's language pointer, imported on first use so unused grammars cost nothing."""
    if grammar == "python":
        import tree_sitter_python
        return tree_sitter_python.language()
    if grammar == "javascript":
        import tree_sitter_javascript
        return tree_sitter_javascript.language()
    if grammar in ("typescript", "tsx"):
        import tree_sitter_typescript
        return tree_sitter_typescript.language_tsx() if grammar == "tsx" else tree_sitter_typescript.language_typescript()
    if grammar == "go":
        import tree_sitter_go
        return tree_sitter_go.language()
    if grammar == "rust":
        import tree_sitter_rust
        return tree_sitter_rust.language()
    if grammar == "java":
        import tree_sitter_java
        return tree_sitter_java.language()
    if grammar == "c":
        import tree_sitter_c
        return tree_sitter_c.language()
    if grammar == "cpp":
        import tree_sitter_cpp
        return tree_sitter_cpp.language()
    raise LookupError(grammar)


GRAMMARS = ("python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp")
_LANGUAGES: dict[str, Language] = {}
_LANGUAGES_LOCK = threading.Lock()


def grammar_for(language: str, filename: str) -> str | None:
    """The grammar that parses a file of language; C headers use C++'s, which also reads C."""
    lower = filename.lower()
    if language == "c" and lower.endswith(".h"):
        return "cpp"
    if language == "typescript" and lower.endswith(".tsx"):
        return "tsx"
    return language if language in GRAMMARS else None


def parser_for(grammar: str) -> Parser | None:
    """This thread's parser for a grammar; None when the grammar cannot be loaded."""
    parsers: dict[str, Parser | None] | None = getattr(_LOCAL, "parsers", None)
    if parsers is None:
        parsers = _LOCAL.parsers = {}
    if grammar not in parsers:
        try:
            with _LANGUAGES_LOCK:
                if grammar not in _LANGUAGES:
                    _LANGUAGES[grammar] = Language(_load(grammar))
            parsers[grammar] = Parser(_LANGUAGES[grammar])
        except Exception:  # an unknown or broken grammar wheel: fewer facts, never an error
            parsers[grammar] = None
    return parsers[grammar]


def parse(grammar: str, source: str) -> Node | None:
    """The root node of source parsed with grammar; None when it cannot be parsed."""
    parser = parser_for(grammar)
    if parser is None:
        return None
    try:
        return parser.parse(source.encode("utf-8", "surrogatepass")).root_node
    except Exception:
        return None


_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_OPENERS = {")": "(", "]": "[", "}": "{"}
_TRIPLE = re.compile(r'"""|\'\'\'')
# The tokens that matter for balancing brackets, found by one regex over the whole fragment: strings
# and line comments (whose brackets do not count), block comment and docstring openings, brackets.
# A string never runs past its line: an unclosed quote is left alone.
_STRINGS = r'"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`'
_SCRIPT_SINGLE = r"'(?:\\.|[^'\\\n])*'"
_CHAR_SINGLE = r"'(?:\\.[^'\n]*|[^'\\\n])'"  # Rust, Go, Java, C: 'x', '\n'; not a Rust lifetime
_TOKENS = {
    "python": re.compile(r'"""|\'\'\'|' + _STRINGS + "|" + _SCRIPT_SINGLE + r"|#.*|[()\[\]{}]"),
    "script": re.compile(_STRINGS + "|" + _SCRIPT_SINGLE + r"|//.*|/\*|[()\[\]{}]"),
    "other": re.compile(_STRINGS + "|" + _CHAR_SINGLE + r"|//.*|/\*|[()\[\]{}]"),
}


def _skip_leading_tail(lines: list[str], grammar: str) -> list[str]:
    """Blank the lines before the end of a comment or docstring that began above the fragment."""
    if grammar == "python":
        for index, line in enumerate(lines):
            found = _TRIPLE.search(line)
            if not found:
                continue
            quote = found.group(0)
            if line.count(quote) != 1:
                return lines
            before = line[:found.start()].strip()
            previous = next((p.strip() for p in reversed(lines[:index]) if p.strip()), "")
            # An opener: `"""Summary`, `x = """`, `f("""`, or `"""` alone right after a def or class line.
            opens = (not before and line[found.end():].strip()) or before.endswith(("=", "(", ",", "return")) \
                or (not before and previous.endswith(":"))
            if opens:
                return lines
            return [""] * (index + 1) + lines[index + 1:]
        return lines
    text = "\n".join(lines)
    end, start = text.find("*/"), text.find("/*")
    if end != -1 and (start == -1 or end < start):
        cut = text[:end].count("\n")
        return [""] * (cut + 1) + lines[cut + 1:]
    return lines


def fragment_source(lines: list[str], grammar: str, *, whole: bool = False) -> str:
    """One side of a hunk as parseable source with the same line numbers (closers may be appended)."""
    if whole:
        return "\n".join(lines)  # a whole file (an added or removed one) needs no mending
    text = "\n".join(_skip_leading_tail(list(lines), grammar))
    tokens = _TOKENS["python" if grammar == "python" else "script" if grammar in ("javascript", "typescript", "tsx")
                     else "other"]
    stack: list[str] = []
    strays: list[int] = []
    position, length = 0, len(text)
    while position < length:
        found = tokens.search(text, position)
        if found is None:
            break
        token = found.group(0)
        position = found.end()
        if token in ('"""', "\'\'\'", "/*"):
            end = text.find("*/" if token == "/*" else token, position)
            if end == -1:
                return _blank(text, strays)  # left open to the end: nothing after it to balance
            position = end + (2 if token == "/*" else 3)
        elif token in _CLOSERS:
            stack.append(token)
        elif token in _OPENERS:
            if stack:
                stack.pop()
            else:
                strays.append(found.start())  # closes a block that opened above the hunk
    text = _blank(text, strays)
    if stack:
        text += "\n" + "".join(_CLOSERS[c] for c in reversed(stack))
    return text


def _blank(text: str, positions: list[int]) -> str:
    """text with the characters at positions replaced by spaces."""
    if not positions:
        return text
    chars = list(text)
    for index in positions:
        chars[index] = " "
    return "".join(chars)


def node_text(node: Node | None) -> str:
    """A node's source text ("" for None)."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")

