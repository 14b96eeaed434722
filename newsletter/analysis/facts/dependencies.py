"""Dependency changes read from manifest patches, and the project's own version bump.

Each manifest format has a small line reader that follows the section it is in (a TOML table, a
JSON object, a go.mod require block, a pom.xml <dependency>) through context, removed and added
lines, one state per side of the diff. The entries read from removed lines are then paired with
those from added lines by name, so a version moved from one line to another is one upgrade, not a
removal and an addition.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .diff import ADDED, CONTEXT, REMOVED, Hunk, clean
from .record import DependencyChange

PYPI, NPM, CARGO, GO, MAVEN, RUBYGEMS, COMPOSER = "pypi", "npm", "cargo", "go", "maven", "rubygems", "composer"


@dataclass(frozen=True)
class _Entry:
    name: str
    spec: str | None  # the version or constraint as written; None when none is given
    ecosystem: str
    dev: bool = False
    indirect: bool = False
    release: bool = False  # the project's own version, not a dependency


@dataclass
class _State:
    """Where one side of the diff is in the manifest: section, open array or block, and their fields."""

    section: str | None = None
    key: str | None = None  # an open multi-line array or value (TOML, setup.cfg, setup.py)
    block: dict[str, str] = field(default_factory=dict)  # an open pom.xml element's fields
    block_tag: str | None = None
    block_changed: bool = False
    depth: int = 0


_Reader = Callable[[_State, str, bool], list[_Entry]]

_PEP508 = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\(?[^;@#]*?\)?)?\s*(?:@\s*\S+)?\s*(?:[;#].*)?$")
_QUOTED = re.compile(r"""["']([^"'\n]+)["']""")
_TOML_SECTION = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"""^\s*(["']?)([\w.\-]+)\1\s*=\s*(.*?)\s*$""")
_VERSION_WORD = re.compile(r"""version\s*=\s*["']([^"']+)["']""")
_OPERATOR = re.compile(r"[<>=!~^]")
_NUMBER = re.compile(r"(\d+)((?:\.\d+)*)")
_SEMVERISH = re.compile(r"^\s*(?:[\^~<>=*]|v?\d|latest\b|next\b|x\b|workspace:|npm:|file:|link:|git\+|git:|github:)")
_PYTHON_VERSION = re.compile(r"""^\s*__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""")
_CARGO_PACKAGE_KEYS = {
    "name", "version", "edition", "description", "license", "license-file", "authors", "readme", "homepage",
    "repository", "documentation", "rust-version", "resolver", "publish", "keywords", "categories", "build",
    "exclude", "include", "default-run", "links", "workspace", "members", "path", "features", "default",
}
_NPM_SECTIONS = {"dependencies": False, "devDependencies": True, "peerDependencies": False,
                 "optionalDependencies": True, "bundledDependencies": False, "require": False, "require-dev": True}
_NPM_NOT_PACKAGES = {"node", "npm", "yarn", "pnpm", "bun", "vscode", "php"}
_POM_SKIP_PROPERTIES = {"java", "jdk", "maven.compiler.source", "maven.compiler.target", "maven.compiler.release",
                        "project.build.sourceencoding", "project.reporting.outputencoding", "revision", "sonar"}


def _normal(name: str) -> str:
    """A dependency name as its registry compares them (PyPI: case and -_. alike)."""
    return re.sub(r"[-_.]+", "-", name.strip().lower())


def _pep508(text: str, dev: bool, *, need_operator: bool = False) -> _Entry | None:
    match = _PEP508.match(text)
    if not match or text.strip().startswith(("-", "http://", "https://", "git+", ".", "/")):
        return None
    spec = (match.group(3) or "").strip().strip("()").strip() or None
    if need_operator and not (spec and _OPERATOR.search(spec)):
        return None
    return _Entry(match.group(1), spec, PYPI, dev=dev)


def _toml_line(state: _State, line: str) -> tuple[str | None, str | None, list[str]]:
    """Follow a TOML line: (key, scalar value, array items) it holds; updates section and open array."""
    text = line.split(" #", 1)[0] if '"' not in line else line
    section = _TOML_SECTION.match(text)
    if section and "=" not in text:
        state.section, state.key = section.group(1).strip().replace('"', "").replace("'", ""), None
        return None, None, []
    if state.key is not None:
        items = [] if text.lstrip().startswith("#") else _QUOTED.findall(text)
        key = state.key
        if "]" in re.sub(r"""["'][^"']*["']""", "", text):
            state.key = None
        return key, None, items
    found = _TOML_KEY.match(text)
    if not found:
        return None, None, []
    key, value = found.group(2), found.group(3)
    if value.startswith("["):
        rest = value[1:]
        if "]" not in re.sub(r"""["'][^"']*["']""", "", rest):
            state.key = key
        return key, None, _QUOTED.findall(rest)
    return key, value, []


def _inline_version(value: str) -> str | None:
    """The version of a TOML value: "1.2" or { version = "1.2", ... }; None for path or git sources."""
    value = value.strip()
    if value.startswith("{"):
        found = _VERSION_WORD.search(value)
        return found.group(1) if found else None
    quoted = _QUOTED.match(value)
    return quoted.group(1) if quoted else None


def _read_pyproject(state: _State, line: str, changed: bool) -> list[_Entry]:
    key, value, items = _toml_line(state, line)
    section = state.section
    if key is None:
        return []
    if value is not None:
        if key == "version" and section in ("project", "tool.poetry"):
            version = _inline_version(value)
            return [_Entry("version", version, PYPI, release=True)] if version else []
        if section and section.startswith("tool.poetry") and section.endswith("dependencies") \
                and key.lower() != "python":
            dev = section != "tool.poetry.dependencies"
            version = _inline_version(value)
            return [_Entry(key, version, PYPI, dev=dev)] if version or value.startswith("{") else []
        return []
    if section == "project" and key == "dependencies":
        return [e for e in (_pep508(item, False) for item in items) if e]
    dev_array = section in ("project.optional-dependencies", "dependency-groups", "tool.pdm.dev-dependencies") \
        or (section == "build-system" and key == "requires") or (section == "tool.uv" and key == "dev-dependencies")
    if dev_array:
        return [e for e in (_pep508(item, True) for item in items) if e]
    if section is None:
        # The table is above the hunk: only strings shaped like constrained requirements count.
        return [e for e in (_pep508(item, key != "dependencies", need_operator=True) for item in items) if e]
    return []


def _read_pipfile(state: _State, line: str, changed: bool) -> list[_Entry]:
    key, value, _items = _toml_line(state, line)
    if key is None or value is None or state.section not in ("packages", "dev-packages"):
        return []
    version = _inline_version(value)
    return [_Entry(key, version, PYPI, dev=state.section == "dev-packages")]


_CARGO_DEPENDENCIES = re.compile(r"^(?:target\..+\.)?(?:workspace\.)?((?:dev-|build-)?)dependencies(?:\.([\w-]+))?$")


def _read_cargo(state: _State, line: str, changed: bool) -> list[_Entry]:
    key, value, _items = _toml_line(state, line)
    if key is None or value is None:
        return []
    section = state.section or ""
    if key == "version" and section in ("package", "workspace.package"):
        version = _inline_version(value)
        return [_Entry("version", version, CARGO, release=True)] if version else []
    deps = _CARGO_DEPENDENCIES.match(section)
    if deps and deps.group(2):  # [dependencies.serde] with version = "1"
        return [_Entry(deps.group(2), _inline_version(value), CARGO, dev=bool(deps.group(1)))] \
            if key == "version" else []
    name = key.split(".", 1)[0]
    if deps:
        if "." in key and not key.endswith(".version"):
            return []  # serde.features = [...], serde.workspace = true: no version here
        return [_Entry(name, _inline_version(value), CARGO, dev=bool(deps.group(1)))]
    if state.section is None and name not in _CARGO_PACKAGE_KEYS:
        version = _inline_version(value)
        if version and _SEMVERISH.match(version):
            return [_Entry(name, version, CARGO)]
    return []


def _read_version_catalog(state: _State, line: str, changed: bool) -> list[_Entry]:
    key, value, _items = _toml_line(state, line)
    if key is None or value is None:
        return []
    if state.section == "versions":
        version = _inline_version(value)
        return [_Entry(key, version, MAVEN)] if version else []
    if state.section in ("libraries", "plugins"):
        found = re.search(r"""(?:module|id)\s*=\s*["']([^"']+)["']""", value)
        coordinates = _QUOTED.match(value.strip())
        if found:
            return [_Entry(found.group(1), _inline_version(value), MAVEN, dev=state.section == "plugins")]
        if coordinates and coordinates.group(1).count(":") == 2:
            group, artifact, version = coordinates.group(1).split(":")
            return [_Entry(f"{group}:{artifact}", version, MAVEN)]
    return []


_DEV_REQUIREMENTS = re.compile(r"(?:^|[/_.\-])(?:dev|develop|test|tests|testing|lint|docs?|ci|typing|types|check)"
                               r"(?:[/_.\-]|$)")
_REQUIREMENT_SKIP = re.compile(r"^\s*(?:#|-[rceif]\b|--|$)")


def _requirements_reader(dev: bool) -> _Reader:
    def read(state: _State, line: str, changed: bool) -> list[_Entry]:
        if _REQUIREMENT_SKIP.match(line):
            return []
        entry = _pep508(line.split(" #", 1)[0].split("\\", 1)[0], dev)
        return [entry] if entry else []
    return read


_CFG_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_CFG_KEY = re.compile(r"^([\w.-]+)\s*[=:]\s*(.*)$")


def _read_setup_cfg(state: _State, line: str, changed: bool) -> list[_Entry]:
    section = _CFG_SECTION.match(line)
    if section:
        state.section, state.key = section.group(1).strip(), None
        return []
    found = _CFG_KEY.match(line)  # unindented: a new key
    if found:
        key, value = found.group(1), found.group(2).strip()
        state.key = key
        if key == "version" and state.section == "metadata" and value and not value.startswith(("attr:", "file:")):
            return [_Entry("version", value, PYPI, release=True)]
        line = value
    elif not line[:1].isspace():
        return []
    if state.section == "options" and state.key in ("install_requires", "setup_requires", "tests_require"):
        entry = _pep508(line, state.key != "install_requires")
        return [entry] if entry and line.strip() else []
    if state.section == "options.extras_require":
        entry = _pep508(line, True)
        return [entry] if entry and line.strip() else []
    return []


_SETUP_KEY = re.compile(r"\b(install_requires|extras_require|tests_require|setup_requires)\s*=")
_SETUP_VERSION = re.compile(r"""\bversion\s*=\s*["']([^"']+)["']""")


def _read_setup_py(state: _State, line: str, changed: bool) -> list[_Entry]:
    key = _SETUP_KEY.search(line)
    if key:
        state.key = key.group(1)
    elif re.match(r"^\s*\w+\s*=", line) and "[" not in line:
        state.key = None
    version = _SETUP_VERSION.search(line)
    if version and not key:
        return [_Entry("version", version.group(1), PYPI, release=True)]
    dev = state.key != "install_requires"
    need = state.key is None
    return [e for e in (_pep508(item, dev, need_operator=need) for item in _QUOTED.findall(line)) if e]


_JSON_PAIR = re.compile(r'^(\s*)"([^"]+)"\s*:\s*(.*?)\s*,?\s*$')


def _read_json_manifest(ecosystem: str) -> _Reader:
    def read(state: _State, line: str, changed: bool) -> list[_Entry]:
        pair = _JSON_PAIR.match(line)
        stripped = line.strip()
        if pair and pair.group(3).startswith("{"):
            state.section = pair.group(2) if pair.group(2) in _NPM_SECTIONS else "other"
            if "}" in pair.group(3):
                state.section = None
            return []
        if stripped.startswith("}"):
            state.section = None
            return []
        if not pair:
            return []
        indent, key, raw = pair.groups()
        value = raw.strip().rstrip(",").strip().strip('"')
        if not raw.strip().startswith('"'):
            return []
        if state.section in _NPM_SECTIONS:
            return [_Entry(key, value, ecosystem, dev=_NPM_SECTIONS[state.section])]
        top = len(indent.replace("\t", "  ")) <= 2
        if state.section is None and top and key == "version":
            return [_Entry("version", value, ecosystem, release=True)]
        if state.section is None and not top and key not in _NPM_NOT_PACKAGES and _SEMVERISH.match(value) \
                and (ecosystem != COMPOSER or "/" in key):
            return [_Entry(key, value, ecosystem)]
        return []
    return read


_GO_REQUIRE = re.compile(r"^\s*(?:require\s+)?([\w.\-~/]+\.[\w.\-~/]+)\s+(v[\w.\-+]+)\s*(//\s*indirect)?")


def _read_go_mod(state: _State, line: str, changed: bool) -> list[_Entry]:
    stripped = line.strip()
    block = re.match(r"^(require|replace|exclude|retract|tool|godebug)\s*\($", stripped)
    if block:
        state.section = block.group(1)
        return []
    if stripped == ")":
        state.section = None
        return []
    if state.section not in (None, "require") or stripped.startswith(("replace ", "exclude ", "retract ", "module ")):
        return []
    if state.section is None and not stripped.startswith("require "):
        # Inside a require block above the hunk, a line is just "path version".
        if not re.match(r"^[\w.\-~]+\.[\w\-]+/", stripped):
            return []
    found = _GO_REQUIRE.match(line)
    if not found:
        return []
    return [_Entry(found.group(1), found.group(2), GO, indirect=bool(found.group(3)))]


_XML_FIELD = re.compile(r"^\s*<([\w.\-]+)>\s*([^<]*?)\s*</\1>")
_XML_OPEN = re.compile(r"^\s*<(dependency|plugin|parent|extension)>\s*$")
_XML_CLOSE = re.compile(r"^\s*</(dependency|plugin|parent|extension|properties)>\s*$")


def _read_pom(state: _State, line: str, changed: bool) -> list[_Entry]:
    if re.match(r"^\s*<exclusions>", line):
        state.depth = 1
    if state.depth:
        if re.match(r"^\s*</exclusions>", line):
            state.depth = 0
        return []
    opened = _XML_OPEN.match(line)
    if opened:
        state.block_tag, state.block, state.block_changed = opened.group(1), {}, changed
        return []
    if re.match(r"^\s*<properties>\s*$", line):
        state.section = "properties"
        return []
    closed = _XML_CLOSE.match(line)
    if closed:
        if closed.group(1) == "properties":
            state.section = None
            return []
        entries = _pom_block(state) if state.block_changed or changed else []
        state.block_tag, state.block, state.block_changed = None, {}, False
        return entries
    found = _XML_FIELD.match(line)
    if not found:
        return []
    tag, value = found.group(1), found.group(2)
    indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
    if state.block_tag is None and tag in ("groupId", "artifactId") and indent > 4 and state.section is None:
        state.block_tag = "dependency"  # the hunk starts inside a <dependency> whose opening is above it
    if state.block_tag is not None:
        state.block[tag] = value
        state.block_changed = state.block_changed or changed
        return []
    if tag == "version" and indent <= 4 and state.section is None:
        return [_Entry("version", value, MAVEN, release=True)] if changed else []
    stem = re.sub(r"[.\-]version$", "", tag)
    if stem != tag and stem.lower() not in _POM_SKIP_PROPERTIES and not stem.lower().startswith("maven.") and changed:
        return [_Entry(stem, value, MAVEN)]
    return []


def _pom_block(state: _State) -> list[_Entry]:
    artifact = state.block.get("artifactId")
    if not artifact or state.block_tag in ("parent", "exclusion"):
        return []
    group = state.block.get("groupId")
    name = f"{group}:{artifact}" if group else artifact
    dev = state.block_tag in ("plugin", "extension") or state.block.get("scope") in ("test", "provided")
    return [_Entry(name, state.block.get("version"), MAVEN, dev=dev)]


def _flush_pom(state: _State) -> list[_Entry]:
    """A <dependency> block still open when the hunk ends: emitted if a line of it changed."""
    entries = _pom_block(state) if state.block_tag and state.block_changed else []
    state.block_tag, state.block, state.block_changed = None, {}, False
    return entries


_GRADLE_DEP = re.compile(
    r"""^\s*(\w+)\s*\(?\s*["']([\w.\-]+):([\w.\-]+):([^"'@:]+)(?::[^"']*)?["']""")
_GRADLE_PLUGIN = re.compile(r"""^\s*id\s*\(?\s*["']([\w.\-]+)["']\s*\)?\s+version\s+["']([^"']+)["']""")
_GRADLE_VERSION = re.compile(r"""^version\s*=?\s*["']([^"']+)["']""")


def _read_gradle(state: _State, line: str, changed: bool) -> list[_Entry]:
    found = _GRADLE_DEP.match(line)
    if found:
        configuration = found.group(1)
        dev = configuration.lower().startswith(("test", "androidtest", "kapt", "annotationprocessor", "classpath"))
        return [_Entry(f"{found.group(2)}:{found.group(3)}", found.group(4), MAVEN, dev=dev)]
    plugin = _GRADLE_PLUGIN.match(line)
    if plugin:
        return [_Entry(plugin.group(1), plugin.group(2), MAVEN, dev=True)]
    version = _GRADLE_VERSION.match(line)
    if version:
        return [_Entry("version", version.group(1), MAVEN, release=True)]
    return []


_GEM = re.compile(r"""^\s*gem\s+["']([\w.\-]+)["'](?:\s*,\s*["']([^"']+)["'](?:\s*,\s*["']([^"']+)["'])?)?""")
_GEMSPEC = re.compile(
    r"""\.add_(runtime_|development_)?dependency\s*\(?\s*["']([\w.\-]+)["'](?:\s*,\s*["']([^"']+)["'])?""")


def _read_gemfile(state: _State, line: str, changed: bool) -> list[_Entry]:
    group = re.match(r"^\s*group\s+(.*?)\s+do\s*$", line)
    if group:
        state.section = "dev" if re.search(r":(?:development|test)\b", group.group(1)) else "group"
        return []
    if re.match(r"^end\s*$", line):
        state.section = None
    found = _GEM.match(line)
    if found:
        spec = ", ".join(part for part in found.group(2, 3) if part) or None
        return [_Entry(found.group(1), spec, RUBYGEMS, dev=state.section == "dev")]
    declared = _GEMSPEC.search(line)
    if declared:
        return [_Entry(declared.group(2), declared.group(3), RUBYGEMS, dev=declared.group(1) == "development_")]
    return []


def _read_python_version(state: _State, line: str, changed: bool) -> list[_Entry]:
    found = _PYTHON_VERSION.match(line)
    return [_Entry("version", found.group(1), PYPI, release=True)] if found else []


def _read_version_file(state: _State, line: str, changed: bool) -> list[_Entry]:
    text = line.strip()
    return [_Entry("version", text, "", release=True)] if re.fullmatch(r"v?\d+(?:\.\d+){1,3}[\w.\-+]*", text) else []


def _reader_for(filename: str) -> _Reader | None:
    path = PurePosixPath(filename.lower())
    name = path.name
    if name == "pyproject.toml":
        return _read_pyproject
    if name == "cargo.toml":
        return _read_cargo
    if name == "pipfile":
        return _read_pipfile
    if name.endswith("versions.toml"):
        return _read_version_catalog
    if re.match(r"^(?:requirements|constraints)[\w.\-]*\.(?:txt|in)$", name) \
            or (path.parent.name == "requirements" and path.suffix in (".txt", ".in")):
        return _requirements_reader(bool(_DEV_REQUIREMENTS.search(str(path))))
    if name == "setup.cfg":
        return _read_setup_cfg
    if name == "setup.py":
        return _read_setup_py
    if name in ("package.json", "bower.json"):
        return _read_json_manifest(NPM)
    if name == "composer.json":
        return _read_json_manifest(COMPOSER)
    if name == "go.mod":
        return _read_go_mod
    if name == "pom.xml":
        return _read_pom
    if name in ("build.gradle", "build.gradle.kts"):
        return _read_gradle
    if name == "gemfile" or name.endswith(".gemspec"):
        return _read_gemfile
    if name in ("__init__.py", "version.py", "_version.py", "__version__.py", "__about__.py"):
        return _read_python_version
    if name in ("version", "version.txt"):
        return _read_version_file
    return None


def _read_file(reader: _Reader, hunks: Iterable[Hunk]) -> tuple[list[_Entry], list[_Entry]]:
    """The entries on removed lines and those on added lines, each side read with its own state."""
    old_state, new_state = _State(), _State()
    old: list[_Entry] = []
    new: list[_Entry] = []
    for hunk in hunks:
        # What lies between two hunks is unseen: a section that opened there would be missed, so
        # each hunk starts from what its own lines (and its header) show.
        old_state, new_state = _State(), _State()
        if hunk.header:
            for state in (old_state, new_state):
                reader(state, hunk.header, False)
        for kind, text in hunk.lines:
            if kind in (CONTEXT, REMOVED):
                found = reader(old_state, text, kind == REMOVED)
                if kind == REMOVED or (reader is _read_pom and found):
                    old.extend(found)
            if kind in (CONTEXT, ADDED):
                found = reader(new_state, text, kind == ADDED)
                if kind == ADDED or (reader is _read_pom and found):
                    new.extend(found)
        if reader is _read_pom:
            old.extend(_flush_pom(old_state))
            new.extend(_flush_pom(new_state))
    return old, new


def _version_key(spec: str | None) -> tuple[tuple[int, ...], int, tuple[int, ...]] | None:
    """A sortable (release numbers, is-final, pre-release numbers) from the first version in spec."""
    if not spec:
        return None
    found = _NUMBER.search(spec)
    if not found:
        return None
    core = tuple(int(part) for part in (found.group(1) + found.group(2)).split("."))
    rest = spec[found.end():]
    pre = re.match(r"^[-.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|snapshot|m|milestone)?\.?(\d[\d.]*)?", rest,
                   re.IGNORECASE)
    is_pre = bool(rest) and bool(re.match(r"^[-.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|snapshot|\d{14})", rest,
                                          re.IGNORECASE))
    pre_numbers = tuple(int(n) for n in re.findall(r"\d+", pre.group(0))) if pre and is_pre else ()
    while len(core) > 1 and core[-1] == 0:
        core = core[:-1]
    return core, 0 if is_pre else 1, pre_numbers


def _is_major(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """The major version moved; under 1.0 the minor is the major (semver's 0.x rule)."""
    old_major, new_major = old[0], new[0]
    if old_major != new_major:
        return True
    old_minor = old[1] if len(old) > 1 else 0
    new_minor = new[1] if len(new) > 1 else 0
    return old_major == 0 and old_minor != new_minor


def _compare(entry_old: _Entry | None, entry_new: _Entry | None, file: str) -> DependencyChange | None:
    """The change from one side's entry to the other's; None when nothing moved."""
    entry = entry_new or entry_old
    if entry is None:
        return None
    old_spec = clean(entry_old.spec, 60) if entry_old and entry_old.spec else None
    new_spec = clean(entry_new.spec, 60) if entry_new and entry_new.spec else None
    change, major = "changed", False
    if entry_old is None:
        change = "added"
    elif entry_new is None:
        change = "removed"
    else:
        module_moved = entry.ecosystem == GO and entry_old.name != entry_new.name  # example.com/m to /v2
        if old_spec == new_spec and not module_moved:
            return None
        old_key, new_key = _version_key(old_spec), _version_key(new_spec)
        if old_key and new_key and old_key != new_key:
            change = "upgraded" if new_key > old_key else "downgraded"
            major = _is_major(old_key[0], new_key[0])
        if module_moved:
            change, major = ("downgraded" if change == "downgraded" else "upgraded"), True
    return DependencyChange(
        name=clean(entry.name, 120), ecosystem=entry.ecosystem, file=clean(file, 200), change=change,
        old=old_spec, new=new_spec, major=major, dev=entry.dev, indirect=entry.indirect,
    )


def _pair_key(entry: _Entry) -> str:
    name = _normal(entry.name)
    if entry.ecosystem == GO:
        name = re.sub(r"/v\d+$", "", name)  # example.com/mod/v2 is the next major of example.com/mod
    return f"{entry.ecosystem}:{name}"


def dependency_changes(files: Sequence[tuple[str, list[Hunk]]]) -> tuple[list[DependencyChange], str | None]:
    """The dependency changes in the manifests among files, and the project's new version if it moved."""
    changes: list[DependencyChange] = []
    release: str | None = None
    release_depth = 1_000
    seen: set[tuple[str, str, str | None, str | None]] = set()
    for filename, hunks in files:
        reader = _reader_for(filename)
        if reader is None or not hunks:
            continue
        old, new = _read_file(reader, hunks)
        old_release = [e.spec for e in old if e.release and e.spec]
        new_release = [e.spec for e in new if e.release and e.spec]
        depth = filename.count("/")
        if new_release and old_release and new_release[-1] != old_release[-1] and depth < release_depth:
            # The manifest nearest the root is the project's own; a monorepo's packages come after it.
            version = new_release[-1]
            release, release_depth = clean(version[1:] if re.match(r"^v\d", version) else version, 40), depth
        by_key_old: dict[str, _Entry] = {}
        by_key_new: dict[str, _Entry] = {}
        for entry in old:
            if not entry.release:
                by_key_old.setdefault(_pair_key(entry), entry)
        for entry in new:
            if not entry.release:
                by_key_new.setdefault(_pair_key(entry), entry)
        for key in list(by_key_old) + [k for k in by_key_new if k not in by_key_old]:
            change = _compare(by_key_old.get(key), by_key_new.get(key), filename)
            if change is None:
                continue
            identity = (change.ecosystem + ":" + _normal(change.name), change.change, change.old, change.new)
            if identity in seen:
                continue  # the same bump in requirements.in and requirements.txt is one change
            seen.add(identity)
            changes.append(change)
    return changes, release
