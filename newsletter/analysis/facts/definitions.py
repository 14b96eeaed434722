"""Definitions (functions, methods, classes, ...) read from a parsed fragment, one reader per language.

A reader walks only where definitions live (modules, class bodies, impl blocks, namespaces,
error-recovery nodes) and never into function bodies: nested helpers are not API, and skipping
bodies keeps the walk small. Each definition keeps its lines in the fragment so a caller can tell
which changed lines fall inside it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from .grammars import node_text

_SPACES = re.compile(r"\s+")
_ANNOTATIONS = re.compile(r"^(?:@[\w.]+(?:\([^)]*\))?\s*)+")
_BODY_CHARS = 4000  # enough body text to tell a renamed function from another one


@dataclass(frozen=True)
class Param:
    """One parameter as callers see it."""

    name: str
    default: str | None = None
    optional: bool = False  # has a default, `x?` or is variadic
    variadic: bool = False
    type: str = ""


@dataclass(frozen=True)
class Definition:
    """A definition found in a fragment, with its lines (0-based, in the fragment)."""

    kind: str  # function, method, class, struct, interface, trait, enum, type
    name: str
    parent: str | None
    signature: str
    params: tuple[Param, ...]
    returns: str
    public: bool
    start: int
    end: int
    head_end: int  # the last line of the signature
    body: str = field(default="", compare=False)
    trait_impl: bool = False  # a Rust `impl Trait for Type` method: its signature is the trait's

    @property
    def qualified(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _without_comments(node: Node, head: bytes, end: int) -> bytes:
    """head (node's text up to byte end) without the comments among node's children and grandchildren."""
    cuts: list[tuple[int, int]] = []
    for child in node.children:
        if child.start_byte >= end:
            break
        inner = [child] + (child.children if child.type in ("parameters", "formal_parameters", "parameter_list",
                                                              "argument_list", "superclasses") else [])
        cuts.extend((c.start_byte - node.start_byte, c.end_byte - node.start_byte) for c in inner
                    if "comment" in c.type and c.start_byte < end)
    for start, stop in sorted(cuts, reverse=True):
        head = head[:start] + head[stop:]
    return head


def _head(node: Node, body: Node | None) -> tuple[str, int]:
    """The signature text of a definition (from its start to its body, comments left out) and its last line."""
    source = node.text or b""
    end = body.start_byte if body is not None else node.end_byte
    head = source[: end - node.start_byte]
    if b"#" in head or b"//" in head or b"/*" in head:  # a comment may sit in the signature: cut it out
        head = _without_comments(node, head, end)
    text = _one_line(head.decode("utf-8", "replace"))
    if body is None:
        return text.rstrip(";"), node.end_point.row
    previous = body.prev_sibling
    last = previous.end_point.row if previous is not None else node.start_point.row
    return text.rstrip("{").strip(), max(last, node.start_point.row)


def _body(body: Node | None) -> str:
    return node_text(body)[:_BODY_CHARS]


class _Reader:
    """Shared walking; subclasses say which nodes are definitions and how to read them."""

    containers: frozenset[str] = frozenset({"ERROR"})
    header_exported = False  # the hunk header is an exported class (JS/TS `export class`)

    def __init__(self, *, public_path: bool, header_class: str | None, header_is_function: bool,
                 header_file: bool = False) -> None:
        self.found: list[Definition] = []
        self.public_path = public_path
        self.header_class = header_class  # the hunk header names the class the fragment is in
        self.header_is_function = header_is_function
        self.header_file = header_file

    def read(self, root: Node) -> list[Definition]:
        self.visit(root, None)
        return self.found

    def visit(self, node: Node, parent: str | None) -> None:
        for child in node.children:
            if not self.definition(child, parent) and child.type in self.containers:
                self.visit(child, parent)

    def definition(self, node: Node, parent: str | None) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def add(self, node: Node, kind: str, name: str, parent: str | None, public: bool, *,
            body: Node | None, params: tuple[Param, ...] = (), returns: str = "", start: int | None = None,
            head_node: Node | None = None, trait_impl: bool = False) -> None:
        if not name:
            return
        signature, head_end = _head(head_node or node, body)
        self.found.append(Definition(
            kind=kind, name=name, parent=parent, signature=_ANNOTATIONS.sub("", signature)[:400],
            params=params, returns=_one_line(returns), public=public and self.public_path,
            start=node.start_point.row if start is None else start, end=node.end_point.row,
            head_end=head_end, body=_body(body), trait_impl=trait_impl,
        ))


def _python_public(*names: str | None) -> bool:
    return all(not name or not name.startswith("_") or (name.startswith("__") and name.endswith("__"))
               for name in names)


class _Python(_Reader):
    containers = frozenset({"ERROR", "module", "block", "if_statement", "else_clause", "elif_clause",
                            "try_statement", "except_clause", "finally_clause", "with_statement"})

    def definition(self, node: Node, parent: str | None) -> bool:
        start = None
        if node.type == "decorated_definition":
            inner = node.child_by_field_name("definition")
            if inner is None:
                return False
            start, node = node.start_point.row, inner
        if node.type == "function_definition":
            name = node_text(node.child_by_field_name("name"))
            indented = node.start_point.column > 0
            if parent is None and indented:
                if self.header_is_function and self.header_class is None:
                    return True  # a function nested in the one the hunk header names: not API
                parent = self.header_class
            kind = "method" if parent or indented else "function"
            self.add(node, kind, name, parent, _python_public(name, parent), body=node.child_by_field_name("body"),
                     params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("return_type")), start=start)
            return True
        if node.type == "class_definition":
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            self.add(node, "class", name, parent, _python_public(name, parent), body=body, start=start)
            if body is not None:
                self.visit(body, f"{parent}.{name}" if parent else name)
            return True
        return False

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            kind = child.type
            if kind == "identifier":
                params.append(Param(node_text(child)))
            elif kind == "typed_parameter":
                inner = child.named_children[0] if child.named_children else None
                text = node_text(inner)
                variadic = inner is not None and inner.type in ("list_splat_pattern", "dictionary_splat_pattern")
                params.append(Param(text, optional=variadic, variadic=variadic,
                                    type=node_text(child.child_by_field_name("type"))))
            elif kind in ("default_parameter", "typed_default_parameter"):
                params.append(Param(node_text(child.child_by_field_name("name")),
                                    default=_one_line(node_text(child.child_by_field_name("value")))[:60],
                                    optional=True, type=node_text(child.child_by_field_name("type"))))
            elif kind in ("list_splat_pattern", "dictionary_splat_pattern"):
                params.append(Param(node_text(child), optional=True, variadic=True))
            elif kind == "keyword_separator":
                params.append(Param("*", optional=True, variadic=True))
        return tuple(params)


_JS_PARAM_TYPES = {"identifier", "assignment_pattern", "rest_pattern", "required_parameter", "optional_parameter",
                   "object_pattern", "array_pattern"}


class _Script(_Reader):
    """JavaScript, TypeScript and TSX."""

    containers = frozenset({"ERROR", "program", "export_statement", "class_body", "statement_block",
                            "interface_body", "object_type", "ambient_declaration"})

    def visit(self, node: Node, parent: str | None) -> None:
        # A statement_block is a container only as a TS namespace body, never as a function body.
        for child in node.children:
            if child.type == "statement_block" and node.type not in ("internal_module", "module"):
                continue
            if not self.definition(child, parent) and child.type in self.containers:
                self.visit(child, parent)

    @staticmethod
    def exported(node: Node) -> bool:
        parent = node.parent
        while parent is not None and parent.type in ("ambient_declaration",):
            parent = parent.parent
        return parent is not None and parent.type == "export_statement"

    def definition(self, node: Node, parent: str | None) -> bool:
        kind = node.type
        if kind in ("function_declaration", "generator_function_declaration", "function_signature"):
            name = node_text(node.child_by_field_name("name"))
            self.add(node, "function", name, parent, self.exported(node), body=node.child_by_field_name("body"),
                     params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("return_type")), start=self.start(node))
            return True
        if kind in ("class_declaration", "abstract_class_declaration", "interface_declaration"):
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            exported = self.exported(node)
            self.add(node, "interface" if kind == "interface_declaration" else "class", name, parent, exported,
                     body=body, start=self.start(node))
            if body is not None:
                self.members(body, name, exported)
            return True
        if kind in ("type_alias_declaration", "enum_declaration"):
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            self.add(node, "enum" if kind == "enum_declaration" else "type", name, parent, self.exported(node),
                     body=body, start=self.start(node))
            return True
        if kind in ("lexical_declaration", "variable_declaration"):
            found = False
            for declarator in node.named_children:
                value = declarator.child_by_field_name("value")
                if declarator.type != "variable_declarator" or value is None \
                        or value.type not in ("arrow_function", "function_expression", "function"):
                    continue
                name = node_text(declarator.child_by_field_name("name"))
                self.add(declarator, "function", name, parent, self.exported(node),
                         body=value.child_by_field_name("body"),
                         params=self.params(value.child_by_field_name("parameters")),
                         returns=node_text(value.child_by_field_name("return_type")), start=node.start_point.row)
                found = True
            return found
        if kind in ("method_definition", "abstract_method_signature", "method_signature"):
            class_name = parent or self.header_class
            self.method(node, class_name, class_name is not None and parent is None and self.header_exported)
            return True
        return False

    def start(self, node: Node) -> int:
        parent = node.parent
        return parent.start_point.row if parent is not None and parent.type == "export_statement" else node.start_point.row

    def members(self, body: Node, class_name: str, exported: bool) -> None:
        for child in body.named_children:
            if child.type in ("method_definition", "abstract_method_signature", "method_signature"):
                self.method(child, class_name, exported)

    def method(self, node: Node, class_name: str | None, exported: bool) -> None:
        name_node = node.child_by_field_name("name")
        name = node_text(name_node)
        modifiers = " ".join(node_text(c) for c in node.children if c.type == "accessibility_modifier")
        private = "private" in modifiers or "protected" in modifiers or name.startswith(("#", "_")) \
            or (name_node is not None and name_node.type == "private_property_identifier")
        self.add(node, "method", name, class_name, exported and not private, body=node.child_by_field_name("body"),
                 params=self.params(node.child_by_field_name("parameters")),
                 returns=node_text(node.child_by_field_name("return_type")))

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            if child.type not in _JS_PARAM_TYPES:
                continue
            if child.type in ("required_parameter", "optional_parameter"):
                pattern = child.child_by_field_name("pattern")
                value = child.child_by_field_name("value")
                type_node = child.child_by_field_name("type")
                variadic = pattern is not None and pattern.type == "rest_pattern"
                params.append(Param(
                    node_text(pattern), default=_one_line(node_text(value))[:60] if value is not None else None,
                    optional=child.type == "optional_parameter" or value is not None or variadic, variadic=variadic,
                    type=node_text(type_node).lstrip(": "),
                ))
            elif child.type == "assignment_pattern":
                params.append(Param(node_text(child.child_by_field_name("left")),
                                    default=_one_line(node_text(child.child_by_field_name("right")))[:60],
                                    optional=True))
            elif child.type == "rest_pattern":
                params.append(Param(node_text(child), optional=True, variadic=True))
            else:
                params.append(Param(_one_line(node_text(child))[:60]))
        return tuple(params)


def _exported_go(name: str) -> bool:
    return bool(name) and name[0].isupper()


class _Go(_Reader):
    containers = frozenset({"ERROR", "source_file", "type_declaration"})

    def definition(self, node: Node, parent: str | None) -> bool:
        kind = node.type
        if kind == "function_declaration":
            name = node_text(node.child_by_field_name("name"))
            self.add(node, "function", name, None, _exported_go(name), body=node.child_by_field_name("body"),
                     params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("result")))
            return True
        if kind == "method_declaration":
            name = node_text(node.child_by_field_name("name"))
            receiver = re.sub(r"\[.*\]", "", node_text(node.child_by_field_name("receiver")))
            found = re.search(r"(\w+)\s*\)\s*$", receiver)
            owner = found.group(1) if found else None
            self.add(node, "method", name, owner, _exported_go(name) and _exported_go(owner or ""),
                     body=node.child_by_field_name("body"), params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("result")))
            return True
        if kind in ("type_spec", "type_alias"):
            name = node_text(node.child_by_field_name("name"))
            type_node = node.child_by_field_name("type")
            type_kind = type_node.type if type_node is not None else ""
            what = {"struct_type": "struct", "interface_type": "interface"}.get(type_kind, "type")
            start = node.parent.start_point.row if node.parent is not None and \
                node.parent.type == "type_declaration" and node.parent.named_child_count == 1 else None
            self.add(node, what, name, None, _exported_go(name), body=type_node if what != "type" else None,
                     start=start)
            if type_node is not None and what == "interface":
                for member in type_node.named_children:
                    if member.type in ("method_elem", "method_spec"):
                        member_name = node_text(member.child_by_field_name("name"))
                        self.add(member, "method", member_name, name,
                                 _exported_go(name) and _exported_go(member_name), body=None,
                                 params=self.params(member.child_by_field_name("parameters")),
                                 returns=node_text(member.child_by_field_name("result")))
            return True
        return False

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            if child.type not in ("parameter_declaration", "variadic_parameter_declaration"):
                continue
            type_text = node_text(child.child_by_field_name("type"))
            names = [node_text(n) for n in child.children_by_field_name("name")] or [type_text]
            variadic = child.type == "variadic_parameter_declaration"
            params.extend(Param(n, optional=variadic, variadic=variadic, type=type_text) for n in names)
        return tuple(params)


class _Rust(_Reader):
    containers = frozenset({"ERROR", "source_file", "declaration_list", "mod_item"})

    @staticmethod
    def pub(node: Node) -> bool:
        return any(child.type == "visibility_modifier" and node_text(child) == "pub" for child in node.children)

    def definition(self, node: Node, parent: str | None, *, trait_impl: bool = False,
                   trait_public: bool = False) -> bool:
        kind = node.type
        if kind in ("function_item", "function_signature_item"):
            name = node_text(node.child_by_field_name("name"))
            owner = parent or (self.header_class if node.start_point.column > 0 else None)
            public = False if trait_impl else (trait_public or self.pub(node))
            self.add(node, "method" if owner else "function", name, owner, public,
                     body=node.child_by_field_name("body"), params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("return_type")), trait_impl=trait_impl)
            return True
        what = {"struct_item": "struct", "enum_item": "enum", "union_item": "struct", "trait_item": "trait",
                "type_item": "type"}.get(kind)
        if what is not None:
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            self.add(node, what, name, parent, self.pub(node), body=body if what != "type" else None)
            if what == "trait" and body is not None:
                for member in body.named_children:
                    self.definition(member, name, trait_public=self.pub(node))
            return True
        if kind == "impl_item":
            type_node = node.child_by_field_name("type")
            owner = re.sub(r"<.*", "", node_text(type_node)).strip()
            is_trait = node.child_by_field_name("trait") is not None
            body = node.child_by_field_name("body")
            if body is not None:
                for member in body.named_children:
                    self.definition(member, owner or None, trait_impl=is_trait)
            return True
        return False

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            if child.type == "self_parameter":
                params.append(Param("self", type=node_text(child)))
            elif child.type == "parameter":
                params.append(Param(node_text(child.child_by_field_name("pattern")),
                                    type=node_text(child.child_by_field_name("type"))))
        return tuple(params)


class _Java(_Reader):
    containers = frozenset({"ERROR", "program", "class_body", "interface_body", "enum_body",
                            "enum_body_declarations"})

    def definition(self, node: Node, parent: str | None, *, in_interface: bool = False) -> bool:
        kind = node.type
        what = {"class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
                "record_declaration": "class", "annotation_type_declaration": "interface"}.get(kind)
        modifiers = next((node_text(c) for c in node.children if c.type == "modifiers"), "")
        words = set(re.findall(r"\b\w+\b", _ANNOTATIONS.sub("", modifiers)))
        if what is not None:
            name = node_text(node.child_by_field_name("name"))
            body = node.child_by_field_name("body")
            self.add(node, what, name, parent, "public" in words or in_interface, body=body)
            if body is not None:
                qualified = f"{parent}.{name}" if parent else name
                for member in body.named_children:
                    if member.type == "enum_body_declarations":
                        for inner in member.named_children:
                            self.definition(inner, qualified)
                    else:
                        self.definition(member, qualified, in_interface=what == "interface")
            return True
        if kind in ("method_declaration", "constructor_declaration", "compact_constructor_declaration"):
            name = node_text(node.child_by_field_name("name"))
            owner = parent or self.header_class
            public = ("public" in words or "protected" in words or in_interface) and "private" not in words
            self.add(node, "method" if owner or node.start_point.column > 0 else "function", name, owner, public,
                     body=node.child_by_field_name("body"), params=self.params(node.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("type")))
            return True
        return False

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            if child.type in ("formal_parameter", "spread_parameter"):
                variadic = child.type == "spread_parameter"
                name_node = child.child_by_field_name("name")
                if name_node is None:
                    declarator = next((c for c in child.named_children if c.type == "variable_declarator"), None)
                    name_node = declarator.child_by_field_name("name") if declarator is not None else None
                params.append(Param(node_text(name_node), optional=variadic, variadic=variadic,
                                    type=node_text(child.child_by_field_name("type"))))
        return tuple(params)


_C_DECLARATOR_WRAPPERS = {"pointer_declarator", "reference_declarator", "parenthesized_declarator",
                          "attributed_declarator", "array_declarator"}


def _function_declarator(node: Node | None) -> Node | None:
    while node is not None and node.type in _C_DECLARATOR_WRAPPERS:
        node = node.child_by_field_name("declarator")
    return node if node is not None and node.type == "function_declarator" else None


class _C(_Reader):
    """C and C++ (headers are read with C++'s grammar)."""

    containers = frozenset({"ERROR", "translation_unit", "declaration_list", "namespace_definition",
                            "linkage_specification", "template_declaration", "preproc_if", "preproc_ifdef",
                            "preproc_else", "preproc_elif", "preproc_elifdef", "export_declaration"})

    def visit(self, node: Node, parent: str | None) -> None:
        access_public = True
        for child in node.children:
            if child.type == "access_specifier":
                access_public = node_text(child).strip().rstrip(":") == "public"
                continue
            if not self.definition(child, parent, access_public=access_public) and child.type in self.containers:
                self.visit(child, parent)

    def definition(self, node: Node, parent: str | None, *, access_public: bool = True) -> bool:
        kind = node.type
        static = any(c.type == "storage_class_specifier" and node_text(c) == "static" for c in node.children)
        if kind in ("function_definition", "declaration", "field_declaration"):
            declarator = _function_declarator(node.child_by_field_name("declarator"))
            if declarator is None:
                return kind == "function_definition"
            raw = node_text(declarator.child_by_field_name("declarator"))
            parts = [p for p in re.split(r"::", re.sub(r"<[^<>]*>", "", raw)) if p]
            if not parts:
                return True
            name, owner = parts[-1].strip(), (".".join(parts[:-1]) or parent)
            if owner is None and self.header_class and node.start_point.column > 0:
                owner = self.header_class
            public = self.header_file and access_public and not static and not name.startswith("_")
            self.add(node, "method" if owner else "function", name, owner, public,
                     body=node.child_by_field_name("body"), params=self.params(declarator.child_by_field_name("parameters")),
                     returns=node_text(node.child_by_field_name("type")))
            return True
        if kind in ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier"):
            body = node.child_by_field_name("body")
            name = node_text(node.child_by_field_name("name"))
            if body is None or not name:
                return False
            self.specifier(node, name, parent, kind, body, access_public)
            return True
        if kind == "type_definition":
            inner = node.child_by_field_name("type")
            declarators = node.children_by_field_name("declarator")
            name = node_text(declarators[-1]) if declarators else ""
            body = inner.child_by_field_name("body") if inner is not None else None
            if inner is not None and body is not None and re.fullmatch(r"\w+", name):
                self.specifier(node, name, parent, inner.type, body, access_public, head=inner)
            elif re.fullmatch(r"\w+", name):
                self.add(node, "type", name, parent, self.header_file and not name.startswith("_"), body=None)
            return True
        return False

    def specifier(self, node: Node, name: str, parent: str | None, kind: str, body: Node, access_public: bool,
                  head: Node | None = None) -> None:
        what = {"class_specifier": "class", "enum_specifier": "enum"}.get(kind, "struct")
        self.add(node, what, name, parent, self.header_file and access_public and not name.startswith("_"),
                 body=body, head_node=head)
        if what in ("class", "struct"):
            default_public = what == "struct"
            access = default_public
            for child in body.children:
                if child.type == "access_specifier":
                    access = node_text(child).strip().rstrip(":") == "public"
                    continue
                if child.type == "template_declaration":
                    child = next((c for c in child.named_children if c.type in
                                  ("function_definition", "declaration", "field_declaration")), child)
                self.definition(child, f"{parent}.{name}" if parent else name, access_public=access)

    @staticmethod
    def params(node: Node | None) -> tuple[Param, ...]:
        if node is None:
            return ()
        params: list[Param] = []
        for child in node.named_children:
            if child.type == "variadic_parameter":
                params.append(Param("...", optional=True, variadic=True))
            elif child.type in ("parameter_declaration", "optional_parameter_declaration"):
                declarator = child.child_by_field_name("declarator")
                name = re.sub(r"[^\w]", "", node_text(declarator)) if declarator is not None else ""
                value = child.child_by_field_name("default_value")
                # The whole declaration without its name and default: `const char *`, not just `char`.
                text = node_text(child)
                if value is not None:
                    text = text[: value.start_byte - child.start_byte].rstrip().rstrip("=")
                cut = text.rfind(name) if name else -1
                type_text = _one_line(text[:cut] + text[cut + len(name):] if cut >= 0 else text)
                if not name and type_text == "void":
                    continue
                params.append(Param(name or type_text, type=type_text,
                                    default=_one_line(node_text(value))[:60] if value is not None else None,
                                    optional=value is not None))
        return tuple(params)


def read_definitions(root: Node, grammar: str, *, public_path: bool, header_class: str | None,
                     header_is_function: bool, header_file: bool, header_exported: bool) -> list[Definition]:
    """The definitions in a parsed fragment of grammar."""
    kind = _READERS.get(grammar)
    if kind is None:
        return []
    reader = kind(public_path=public_path, header_class=header_class, header_is_function=header_is_function,
                  header_file=header_file)
    reader.header_exported = header_exported
    return reader.read(root)


_READERS: dict[str, type[_Reader]] = {
    "python": _Python, "javascript": _Script, "typescript": _Script, "tsx": _Script, "go": _Go, "rust": _Rust,
    "java": _Java, "c": _C, "cpp": _C,
}
