"""Public-API signals: what users of a project call, pass or scrape, removed, renamed or changed.

Symbols come from symbols.py; the rest is read from changed lines with one pattern per framework:
CLI options (argparse, click, typer, Go flag and cobra, clap, commander, picocli), environment
variables read in code, configuration keys of config files, Prometheus metrics and HTTP routes.
Names are compared across the whole commit, so an option or a route moved to another file is not
a removal. Tests, docs, vendored and generated files are not read.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from .diff import ADDED, REMOVED, Hunk, Lines, clean
from .record import ApiSignal, SymbolChange
from .roles import CONFIG, SOURCE

_READ_ROLES = {SOURCE, CONFIG, "build", "other"}
_COMMENT = re.compile(r"^\s*(?:#(?!\[)|//|/\*|\*|--)")

_CLI_PATTERNS = [
    # argparse: every option string of the call; click and typer options.
    re.compile(r"""add_argument\(\s*((?:["']-{1,2}[\w-]+["']\s*,\s*)*["']-{1,2}[\w-]+["'])"""),
    re.compile(r"""@(?:click|\w+)\.option\(\s*((?:["']-{1,2}[\w-]+(?:/-{1,2}[\w-]+)?["']\s*,\s*)*["']-{1,2}[\w-]+)"""),
    re.compile(r"""typer\.Option\([^)]*?((?:["']-{1,2}[\w-]+["']\s*,?\s*)+)"""),
    # commander / yargs / picocli
    re.compile(r"""\.(?:option|requiredOption)\(\s*["'](?:-\w,\s*)?(--[\w-]+)"""),
    re.compile(r"""@Option\(\s*names\s*=\s*\{?\s*((?:"-{1,2}[\w-]+"\s*,?\s*)+)"""),
    # clap
    re.compile(r"""\.long\(\s*"([\w-]+)"\s*\)"""),
    re.compile(r"""#\[(?:arg|clap)\([^\]]*\blong\s*=\s*"([\w-]+)\""""),
]
_GO_FLAG = re.compile(r"""\bflag\.(?:String|Bool|Int|Int64|Uint|Uint64|Float64|Duration|Func|TextVar|Var|StringVar|BoolVar"""
                      r"""|IntVar|Int64Var|UintVar|Uint64Var|Float64Var|DurationVar)\(\s*(?:&?[\w.]+\s*,\s*)?"([\w.-]+)\"""")
_COBRA_FLAG = re.compile(r"""Flags\(\)\.\w+?(?:VarP?|P)?\(\s*(?:&?[\w.\[\]]+\s*,\s*)?"([\w.-]+)\"""")
_CLAP_BARE_LONG = re.compile(r"""#\[(?:arg|clap)\([^\]]*\blong\b(?!\s*=)""")
_RUST_FIELD = re.compile(r"^\s*(?:pub\s+)?(\w+)\s*:")
_OPTION_STRING = re.compile(r"""-{1,2}[\w-]+""")

_ENV_PATTERNS = [
    re.compile(r"""os\.environ(?:\.get)?\s*[\[(]\s*["']([A-Za-z_][\w]*)["']"""),
    re.compile(r"""os\.(?:getenv|Getenv|LookupEnv)\(\s*["']([A-Za-z_][\w]*)["']"""),
    re.compile(r"""process\.env\.([A-Za-z_][\w]*)"""),
    re.compile(r"""process\.env\[\s*["'`]([A-Za-z_][\w]*)["'`]\s*\]"""),
    re.compile(r"""env::var(?:_os)?\(\s*"([A-Za-z_][\w]*)"\s*\)"""),
    re.compile(r"""System\.getenv\(\s*"([A-Za-z_][\w]*)"\s*\)"""),
    re.compile(r"""\bgetenv\(\s*"([A-Za-z_][\w]*)"\s*\)"""),
    re.compile(r"""import\.meta\.env\.([A-Za-z_][\w]*)"""),
    re.compile(r"""ENV\[\s*["']([A-Za-z_][\w]*)["']\s*\]"""),
]

_METRIC_PATTERNS = [
    # Python prometheus_client, Java simpleclient and Micrometer, prom-client, Rust prometheus.
    re.compile(r"""\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*["']([a-zA-Z_:][\w:]*)["']"""),
    re.compile(r"""\b(Counter|Gauge|Histogram|Summary)\.build(?:er)?\(\s*(?:"([a-zA-Z_:][\w:.]*)")?"""),
    re.compile(r"""\.name\(\s*"([a-zA-Z_:][\w:]*)"\s*\)"""),
    re.compile(r"""new\s+(?:\w+\.)?(Counter|Gauge|Histogram|Summary)\(\s*\{\s*name:\s*["'`]([a-zA-Z_:][\w:]*)"""),
    re.compile(r"""\bregister_(?:int_)?(counter|gauge|histogram)(?:_vec)?!\(\s*"([a-zA-Z_:][\w:]*)\""""),
    re.compile(r"""\b(?:Int)?(Counter|Gauge|Histogram)(?:Vec)?::(?:new|with_opts)\(\s*(?:Opts::new\()?\s*"([a-zA-Z_:][\w:]*)\""""),
    re.compile(r"""\bMetrics\.(counter|gauge|timer|summary)\(\s*"([a-zA-Z_:][\w:.]*)\""""),
]
_GO_METRIC_OPEN = re.compile(r"prometheus\.\w*(Counter|Gauge|Histogram|Summary)\w*Opts\s*\{|promauto\.New(Counter|Gauge|Histogram|Summary)")
_GO_METRIC_NAME = re.compile(r"""^\s*Name:\s*"([a-zA-Z_:][\w:]*)\"""")

# (languages, pattern, group of the path, group of the method or 0)
_ROUTE_PATTERNS = [
    # Flask, FastAPI, Starlette, Sanic, aiohttp decorators
    ({"python"}, re.compile(r"""@\w+(?:\.\w+)*\.(route|get|post|put|delete|patch|head|options|websocket|api_route)"""
                            r"""\(\s*["']([^"']*)["'](?:.*methods\s*=\s*[\[(]\s*["'](\w+))?"""), 2, 1),
    # Express, Koa, Hono, Fastify (not `api.get(...)`: in a front end that is a request, not a route)
    ({"javascript", "typescript"}, re.compile(
        r"""\b(?:app|router|server|routes?|r)\.(get|post|put|delete|patch|all|head|options)\(\s*["'`](/[^"'`]*)"""), 2, 1),
    # Go net/http, gorilla/mux, chi, gin, echo, fiber
    ({"go"}, re.compile(r"""\.(HandleFunc|Handle)\(\s*"([^"]+)\""""), 2, 0),
    ({"go"}, re.compile(r"""\.(GET|POST|PUT|DELETE|PATCH|Get|Post|Put|Delete|Patch|Head|Options)\(\s*"(/[^"]*)\""""),
     2, 1),
    # Spring
    ({"java"}, re.compile(r"""@(Get|Post|Put|Delete|Patch|Request)Mapping\(\s*(?:value\s*=\s*|path\s*=\s*)?\{?\s*"""
                          r""""([^"]*)\""""), 2, 1),
    # actix-web and rocket attributes, actix and axum builders
    ({"rust"}, re.compile(r"""#\[(get|post|put|delete|patch|head)\(\s*"([^"]+)\""""), 2, 1),
    ({"rust"}, re.compile(r"""\.(route|resource|service)\(\s*"(/[^"]*)\""""), 2, 0),
]
# Lower-case literals of which every match of a family's patterns holds one.
_CLI_TRIGGERS = ("add_argument", "option", ".long(", "#[arg", "#[clap", "flag.", "flags()")
_ENV_TRIGGERS = ("environ", "getenv", "lookupenv", "process.env", "env::var", "import.meta.env", "env[")
_METRIC_TRIGGERS = ("counter", "gauge", "histogram", "summary", "info(", "enum(", "register_", "metrics.", ".name(")
_ROUTE_TRIGGERS = ("route", "mapping", "handle", "get(", "post(", "put(", "delete(", "patch(", "head(", "options(",
                   "all(", "websocket(", "#[", "path(", "resource(", "service(")
_DJANGO_PATH = re.compile(r"""\b(?:re_)?path\(\s*r?["']([^"']*)["']""")

_CONFIG_KEYS = {
    "yaml": re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*:(?:\s|$)"),
    "toml": re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*="),
    "ini": re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*[=:]"),
    "json": re.compile(r'^\s*"([^"]{1,80})"\s*:'),
    "env": re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*="),
}
_CONFIG_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".conf": "ini",
                   ".properties": "ini", ".json": "json", ".jsonc": "json", ".json5": "json", ".env": "env"}
# Config files users copy or read as documentation of the settings: removing a key there breaks them.
_USER_CONFIG = re.compile(r"example|sample|template|default|schema|\.dist$|^\.env", re.IGNORECASE)
# Tool settings (compilers, linters, editors, CI services) are not the project's configuration.
_TOOL_CONFIG = re.compile(
    r"(?:^|/)(?:tsconfig[\w.-]*\.json|jsconfig\.json|\.eslintrc[\w.]*|\.prettierrc[\w.]*|\.stylelintrc[\w.]*"
    r"|renovate\.json|\.?codecov\.ya?ml|mkdocs\.ya?ml|\.readthedocs\.ya?ml|\.golangci\.ya?ml|jest\.config\.\w+"
    r"|\.babelrc|\.swcrc|\.markdownlint[\w.]*|\.yamllint[\w.]*|\.clang-\w+|\.editorconfig|\.gitattributes"
    r"|\.gitignore|\.dockerignore|ruff\.toml|\.ruff\.toml|mypy\.ini|\.flake8|\.pylintrc|rustfmt\.toml|clippy\.toml"
    r"|deny\.toml|\.taplo\.toml|\.coveragerc|pytest\.ini|\.nvmrc)$|(?:^|/)\.(?:vscode|idea|devcontainer|github)/",
    re.IGNORECASE,
)
_ALL_BLOCK = re.compile(r"__all__\s*[:=+]")
_JS_EXPORT_LIST = re.compile(r"^\s*export\s*(?:type\s*)?\{([^}]*)\}?")


@dataclass(frozen=True)
class ApiFile:
    """A file's patch as api reads it."""

    filename: str
    role: str
    language: str | None
    hunks: list[Hunk]


def _sides(files: Iterable[ApiFile]) -> Iterable[tuple[ApiFile, str, list[str]]]:
    """For every readable file: (file, REMOVED, its removed lines) and (file, ADDED, its added lines)."""
    for file in files:
        if file.role not in _READ_ROLES:
            continue
        for tag in (REMOVED, ADDED):
            yield file, tag, [text for hunk in file.hunks for kind, text in hunk.lines if kind == tag]


def _cli_options(lines: Lines, language: str | None) -> list[str]:
    options: list[str] = []
    for index in lines.indexes(_CLI_TRIGGERS):
        line = lines.lines[index]
        if _COMMENT.match(line):
            continue
        for pattern in _CLI_PATTERNS:
            for found in pattern.finditer(line):
                strings = _OPTION_STRING.findall(found.group(1))
                strings = [s for s in strings if s.startswith("-")] or [f"--{found.group(1)}"]
                longest = max(strings, key=len)
                options.append(longest if longest.startswith("-") else f"--{longest}")
        for pattern in (_GO_FLAG, _COBRA_FLAG):
            options.extend(f"-{found.group(1)}" if pattern is _GO_FLAG else f"--{found.group(1)}"
                           for found in pattern.finditer(line))
        if _CLAP_BARE_LONG.search(line):
            for following in lines.lines[index + 1:index + 4]:
                field = _RUST_FIELD.match(following)
                if field and not following.lstrip().startswith("#"):
                    options.append("--" + field.group(1).replace("_", "-"))
                    break
    return options


def _env_vars(lines: Lines) -> list[str]:
    return [found.group(1) for line in lines.having(_ENV_TRIGGERS) if not _COMMENT.match(line)
            for pattern in _ENV_PATTERNS for found in pattern.finditer(line)]


def _metrics(lines: Lines, language: str | None) -> list[str]:
    names: list[str] = []
    for index in lines.indexes(_METRIC_TRIGGERS):
        line = lines.lines[index]
        if _COMMENT.match(line):
            continue
        for pattern in _METRIC_PATTERNS:
            for found in pattern.finditer(line):
                name = found.group(found.lastindex or 1)
                if name and re.fullmatch(r"[a-zA-Z_:][\w:.]*", name) and name not in ("Counter", "Gauge"):
                    names.append(name)
        if language == "go" and _GO_METRIC_OPEN.search(line):
            for following in lines.lines[index:index + 6]:
                found_name = _GO_METRIC_NAME.match(following)
                if found_name:
                    names.append(found_name.group(1))
                    break
    return names


def _routes(lines: Lines, filename: str, language: str) -> list[str]:
    routes: list[str] = []
    django = PurePosixPath(filename).name == "urls.py"
    patterns = [(p, path, method) for languages, p, path, method in _ROUTE_PATTERNS if language in languages]
    for line in lines.having(_ROUTE_TRIGGERS):
        if _COMMENT.match(line):
            continue
        for pattern, path_group, method_group in patterns:
            for found in pattern.finditer(line):
                path = found.group(path_group)
                method = found.group(method_group).upper() if method_group else ""
                if method in ("ROUTE", "HANDLEFUNC", "HANDLE", "RESOURCE", "SERVICE", "API_ROUTE", "REQUEST"):
                    extra = found.group(3) if found.re.groups >= 3 else None
                    method = extra.upper() if extra else ""
                routes.append(f"{method} {path}".strip())
        if django:
            routes.extend(found.group(1) or "/" for found in _DJANGO_PATH.finditer(line))
    return routes


def _config_keys(file: ApiFile, lines: list[str]) -> list[str]:
    name = PurePosixPath(file.filename.lower()).name
    suffix = PurePosixPath(name).suffix
    kind = "env" if name.startswith(".env") or name.endswith((".env", ".env.example")) else _CONFIG_FORMATS.get(suffix)
    if kind is None and suffix in (".example", ".sample", ".dist", ".template"):
        kind = _CONFIG_FORMATS.get(PurePosixPath(name[: -len(suffix)]).suffix, "env")
    pattern = _CONFIG_KEYS.get(kind or "")
    if pattern is None:
        return []
    return [found.group(1) for line in lines
            if not re.match(r"^\s*(?:#|;|//)", line) and (found := pattern.match(line))]


def _exports_removed(files: Sequence[ApiFile]) -> list[tuple[str, str]]:
    """Names taken out of Python `__all__` or a JS/TS `export { ... }` list, with their file."""
    removed: list[tuple[str, str]] = []
    added: set[str] = set()
    for file in files:
        if file.role != SOURCE or file.language not in ("python", "javascript", "typescript"):
            continue
        marker = "__all__" if file.language == "python" else "export"
        for hunk in file.hunks:
            if marker not in hunk.header and not any(marker in text for _kind, text in hunk.lines):
                continue
            in_all = bool(_ALL_BLOCK.search(hunk.header))
            for kind, text in hunk.lines:
                if file.language == "python":
                    if _ALL_BLOCK.search(text):
                        in_all = True
                    elif re.match(r"^[^\s\])]", text):
                        in_all = False
                    names = re.findall(r"""["']([A-Za-z_]\w*)["']""", text) if in_all else []
                    if in_all and re.search(r"[\])]\s*$", text):
                        in_all = False
                else:
                    listed = _JS_EXPORT_LIST.match(text)
                    names = [n.split(" as ")[-1].strip() for n in listed.group(1).split(",")] if listed else []
                    names = [n for n in names if re.fullmatch(r"[\w$]+", n)]
                if kind == REMOVED:
                    removed.extend((n, file.filename) for n in names)
                elif kind == ADDED:
                    added.update(names)
    return [(name, filename) for name, filename in removed if name not in added]


def _set_changes(per_side: dict[str, dict[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, file) removed on the whole and added on the whole, from {side: {name: file}}."""
    old, new = per_side.get(REMOVED, {}), per_side.get(ADDED, {})
    return ([(n, f) for n, f in old.items() if n not in new], [(n, f) for n, f in new.items() if n not in old])


def _annotations_only(symbol: SymbolChange) -> bool:
    """A Python, JavaScript or TypeScript signature whose only change is in type annotations: no caller breaks."""
    parts = (symbol.detail or "").split("; ")
    return not symbol.breaking and bool(symbol.detail) and all(
        part in ("parameter types changed", "return annotation changed") for part in parts)


def _symbol_signals(symbols: Sequence[SymbolChange]) -> list[ApiSignal]:
    signals: list[ApiSignal] = []
    added_elsewhere = {(s.language, s.name.rsplit(".", 1)[-1]): s.file for s in symbols if s.change == "added"}
    for symbol in symbols:
        if not symbol.public:
            continue
        if symbol.change == "removed":
            moved_to = added_elsewhere.get((symbol.language, symbol.name.rsplit(".", 1)[-1]))
            if moved_to and moved_to != symbol.file:
                signals.append(ApiSignal("symbol_moved", symbol.name, symbol.file, False, clean(f"to {moved_to}", 120)))
            else:
                signals.append(ApiSignal("symbol_removed", symbol.name, symbol.file, True, symbol.old_signature))
        elif symbol.change == "renamed":
            signals.append(ApiSignal("symbol_renamed", symbol.name, symbol.file, symbol.breaking,
                                     clean(f"{symbol.old_name} → {symbol.name}", 120)))
        elif symbol.change == "signature" and not _annotations_only(symbol):
            only_defaults = bool(symbol.detail) and all(
                " default " in part or part.endswith("now optional") or part.startswith("adds optional")
                for part in (symbol.detail or "").split("; "))
            kind = "default_changed" if only_defaults and " default " in (symbol.detail or "") else "signature_changed"
            signals.append(ApiSignal(kind, symbol.name, symbol.file, symbol.breaking,
                                     symbol.detail or clean(f"{symbol.old_signature} → {symbol.new_signature}", 160)))
    return signals


def api_signals(symbols: Sequence[SymbolChange], files: Sequence[ApiFile]) -> list[ApiSignal]:
    """The public-API signals of a commit, breaking ones first."""
    signals = _symbol_signals(symbols)
    signals.extend(ApiSignal("export_removed", clean(name, 120), clean(file, 200), True)
                   for name, file in _exports_removed(files))

    options: dict[str, dict[str, str]] = {}
    env: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, str]] = {}
    routes: dict[str, dict[str, str]] = {}
    for file, tag, lines in _sides(files):
        if not lines:
            continue
        if file.role == CONFIG:
            if _TOOL_CONFIG.search(file.filename):
                continue
            keys = _config_keys(file, lines)
            other = [text for hunk in file.hunks for kind, text in hunk.lines if kind == (ADDED if tag == REMOVED else REMOVED)]
            if tag == REMOVED:
                still = set(_config_keys(file, other))
                user = bool(_USER_CONFIG.search(PurePosixPath(file.filename).name))
                for key in dict.fromkeys(k for k in keys if k not in still):
                    signals.append(ApiSignal("config_key_removed", clean(key, 120), clean(file.filename, 200), user))
            elif _USER_CONFIG.search(PurePosixPath(file.filename).name):
                before = set(_config_keys(file, other))
                for key in dict.fromkeys(k for k in keys if k not in before):
                    signals.append(ApiSignal("config_key_added", clean(key, 120), clean(file.filename, 200), False))
            continue
        if file.language is None:
            continue
        # Each family of patterns runs only on the lines that hold one of its literals.
        indexed = Lines(lines)
        for option in _cli_options(indexed, file.language):
            options.setdefault(tag, {}).setdefault(option, file.filename)
        for name in _env_vars(indexed):
            env.setdefault(tag, {}).setdefault(name, file.filename)
        for name in _metrics(indexed, file.language):
            metrics.setdefault(tag, {}).setdefault(name, file.filename)
        for route in _routes(indexed, file.filename, file.language):
            routes.setdefault(tag, {}).setdefault(route, file.filename)

    for what, found in (("cli_option", options), ("env_var", env), ("route", routes)):
        gone, new = _set_changes(found)
        signals.extend(ApiSignal(f"{what}_removed", clean(n, 120), clean(f, 200), True) for n, f in gone)
        signals.extend(ApiSignal(f"{what}_added", clean(n, 120), clean(f, 200), False) for n, f in new)

    gone_metrics, new_metrics = _set_changes(metrics)
    # One metric gone and one new in the same file is a rename: dashboards and alerts on the old name break.
    new_by_file: dict[str, list[str]] = {}
    for name, path in new_metrics:
        new_by_file.setdefault(path, []).append(name)
    gone_by_file: dict[str, list[str]] = {}
    for name, path in gone_metrics:
        gone_by_file.setdefault(path, []).append(name)
    for path, names in gone_by_file.items():
        if len(names) == 1 and len(new_by_file.get(path, [])) == 1:
            new_name = new_by_file.pop(path)[0]
            signals.append(ApiSignal("metric_renamed", clean(new_name, 120), clean(path, 200), True,
                                     clean(f"{names[0]} → {new_name}", 120)))
        else:
            signals.extend(ApiSignal("metric_removed", clean(n, 120), clean(path, 200), True) for n in names)
    signals.extend(ApiSignal("metric_added", clean(n, 120), clean(path, 200), False)
                   for path, names in new_by_file.items() for n in names)
    # Breaking first; otherwise in the order found (symbols, then options, variables, routes, metrics).
    return sorted(signals, key=lambda s: not s.breaking)
