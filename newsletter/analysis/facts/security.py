"""Security signals read from the changed code itself, never from the commit's words.

Each rule is a pattern on code lines and the direction its appearance takes: adding an escape, a
permission check or a size limit hardens; adding `verify=False`, `shell=True` or a hard-coded key
weakens; removing one does the opposite. A rule counts per file, so a line that only moved (the
same match removed and added) says nothing. Paired rules need the weak form removed and the strong
one added in the same file (md5 to sha256, random to secrets, yaml.load to safe_load, string-built
SQL to parameters). Comment lines are skipped, and so are test, docs, vendored, generated, lockfile
and asset files: a test that calls html.escape hardens nothing.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .diff import ADDED, REMOVED, Hunk, Lines, clean
from .record import SecuritySignal
from .roles import ASSET, DOCS, GENERATED, LOCKFILE, TEST, VENDORED

HARDENS, WEAKENS = "hardens", "weakens"
_SKIPPED_ROLES = {TEST, DOCS, VENDORED, GENERATED, LOCKFILE, ASSET}
_COMMENT = re.compile(r"^\s*(?:#(?!\[)|//|/\*|\*|--|<!--|;)")
# Imports name protections without using them; moving an import says nothing.
_IMPORT = re.compile(r"^\s*(?:from\s+[\w.]+\s+import\b|import\s|use\s|#\s*include\b|require\s|using\s)")
_EVIDENCE_CHARS = 100


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    added: str  # the direction when the pattern appears; its disappearance is the other one
    # Lower-case literals of which every match holds one: a cheap `in` test before the costly regex.
    triggers: tuple[str, ...]


def _rule(kind: str, pattern: str, added: str, triggers: str, flags: int = 0) -> _Rule:
    return _Rule(kind, re.compile(pattern, flags), added, tuple(triggers.split()))


_RULES = [
    _rule("escaping", r"\bhtml\.escape\(|(?<![\w.])escape\(|\b(?:markupsafe|Markup)\.escape\(|\bescape_?html\(|\bbleach\.(?:clean|linkify)\("
          r"|\bDOMPurify\.sanitize\(|\bencodeURIComponent\(|\bshlex\.quote\(|\bhtmlspecialchars\(|\bhtmlentities\("
          r"|\bHTMLEscapeString\(|\bhtml\.EscapeString\(|\bsanitize_?(?:html|input|url|filename)?\s*\("
          r"|\bStringEscapeUtils\.escape\w+\(|\bxml\.sax\.saxutils\.escape\(|\bquoteattr\(|\bescapeshellarg\(",
          HARDENS, "escape bleach purify encodeuricomponent quote htmlspecialchars htmlentities sanitize",
          re.IGNORECASE),
    _rule("escaping", r"dangerouslySetInnerHTML|\.innerHTML\s*=|\bmark_safe\(|\|\s*safe\b|\bv-html\b"
          r"|\{\{\{|\bautoescape\s*=\s*False|\bautoescape\s+false\b|\bhtml\.unescape\(|template\.HTML\(",
          WEAKENS, "innerhtml mark_safe safe v-html {{{ autoescape unescape template.html("),
    _rule("input_limit", r"\bMAX_\w*(?:SIZE|LENGTH|BYTES|LEN|FRAME\w*|BODY\w*)\b"
          r"|\bmax_(?:content|body|request|upload|frame|message|payload|header|file|input|line|field|form|part|read)"
          r"\w*(?:size|length|bytes|len)\b|\bmaxContentLength\b|\bmax_content_length\b|\bclient_max_body_size\b"
          r"|\bmax_frame_size\b|\bLimitReader\(|\bMaxBytesReader\(|\bmaxBodyLength\b|\bbodyLimit\b"
          r"|\b(?:read|recv)\(\s*(?:MAX_|max_|limit\b|\d{3,})|\.take\(\s*(?:MAX_|max_|\d{3,})",
          HARDENS, "max_ maxcontentlength maxbodylength bodylimit limitreader maxbytesreader read( recv( .take("),
    _rule("auth_check", r"@login_required\b|@permission_required\b|@(?:requires?_(?:auth|login|permission|role)\w*)\b"
          r"|\bhas_perms?\(|\bhas_permission\(|\bcheck_permissions?\(|\bauthorize\(|\bis_admin\b|\bis_superuser\b"
          r"|\bis_authenticated\b|\bisAuthenticated\(|@PreAuthorize\b|@Secured\b|@RolesAllowed\b|@UseGuards\("
          r"|\brequire_?(?:auth|admin|login|permission)\w*\(|\bensure_(?:authenticated|authorized|admin)\w*\("
          r"|\bverify_(?:token|jwt|signature|password)\(|\bcheck_password\(|\bcurrent_user\.can\(|\bIsAuthorized\("
          r"|\bPermissionDenied\b|\bForbidden\(|\babort\(\s*40[13]\b|HTTP_40[13]|StatusForbidden|StatusUnauthorized"
          r"|status(?:_code)?\s*=\s*40[13]\b",
          HARDENS, "login_required permission require has_perm authorize is_admin is_superuser is_authenticated "
                   "isauthenticated secured rolesallowed useguards ensure_ verify_ check_password current_user "
                   "forbidden abort( http_40 status"),
    _rule("auth_check", r"@(?:permission_classes|authentication_classes)\(\s*\[\s*\]\)|\bAllowAny\b|@PermitAll\b"
          r"|\.permitAll\(\)|@csrf_exempt\b|\bskip_before_action\s+:(?:authenticate|verify_authenticity)",
          WEAKENS, "_classes allowany permitall csrf_exempt skip_before_action"),
    _rule("constant_time", r"\bhmac\.compare_digest\(|\bsecrets\.compare_digest\(|\btimingSafeEqual\("
          r"|\bConstantTimeCompare\(|\bMessageDigest\.isEqual\(|\bconstant_time_(?:eq|compare)\(|\bct_eq\(",
          HARDENS, "compare_digest timingsafeequal constanttimecompare isequal constant_time_ ct_eq"),
    _rule("csrf", r"\bCSRFProtect\(|\bcsrf_protect\b|\bcsrf\(\)|\bcsurf\b|\bCsrfViewMiddleware\b|\bprotect_from_forgery\b"
          r"|\bcsrf_token\b|\bvalidate_csrf\(|\bSameSite\s*[=:]\s*[\"']?(?:Strict|Lax)",
          HARDENS, "csrf csurf protect_from_forgery samesite", re.IGNORECASE),
    _rule("csrf", r"WTF_CSRF_ENABLED[\"'\]]*\s*[=:]\s*False|\.csrf\(\)\.disable\(\)|csrf[\"'\]]*\s*[=:]\s*(?:False|false)\b",
          WEAKENS, "csrf"),
    _rule("tls", r"\bverify\s*=\s*False\b|InsecureSkipVerify\s*:\s*true|\bCERT_NONE\b|check_hostname\s*=\s*False"
          r"|rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED|danger_accept_invalid_(?:certs|hostnames)\(\s*true"
          r"|\bPROTOCOL_(?:SSLv\d|TLSv1(?:_1)?)\b|\bVersionTLS1[01]\b|\bTLSv1(?:[._]1)?(?![._]?\d)|_create_unverified_context\("
          r"|\bssl\s*=\s*False\b|sslmode\s*=\s*[\"']?disable|\bsecure\s*[=:]\s*(?:False|false)\b"
          r"|\bhttponly\s*[=:]\s*(?:False|false)\b",
          WEAKENS, "verify unverified cert_none check_hostname reject danger_accept protocol_ versiontls1 tlsv1 ssl "
                   "secure httponly", re.IGNORECASE),
    _rule("tls", r"\bVersionTLS1[23]\b|TLSVersion\.TLSv1_[23]\b|\bminimum_version\b|\bMinVersion\s*:|\bPROTOCOL_TLS_CLIENT\b"
          r"|\bcheck_hostname\s*=\s*True|\bverify\s*=\s*True\b|\bCERT_REQUIRED\b|Strict-Transport-Security"
          r"|\bSESSION_COOKIE_SECURE[\"'\]]*\s*=\s*True|\bsecure\s*[=:]\s*(?:True|true)\b|\bhttponly\s*[=:]\s*(?:True|true)\b",
          HARDENS, "versiontls1 tlsversion minimum_version minversion protocol_ check_hostname verify cert_required "
                   "strict-transport-security secure httponly", re.IGNORECASE),
    _rule("path_restriction", r"\bos\.path\.realpath\(|\bos\.path\.commonpath\(|\bsecure_filename\(|\bsafe_join\("
          r"|\bfilepath\.Clean\(|\bfilepath\.Rel\(|\bfilepath\.IsLocal\(|\bos\.OpenRoot\(|\bis_relative_to\("
          r"|\bcanonicalize\(\)|\bgetCanonicalPath\(|\bpath\.normalize\(|\bsend_from_directory\("
          r"|[\"']\.\.[\"']\s*(?:in|not in)\b|\bcontains\(\s*\"\.\.\"|\bincludes\(\s*[\"']\.\.[\"']"
          r"|\bstartswith\(\s*(?:base|root)|\bstartsWith\(\s*(?:base|root)|\.\.[/\\]{1,2}[\"']\s*\)",
          HARDENS, "realpath commonpath secure_filename safe_join filepath. openroot is_relative_to canonical normalize "
                   "send_from_directory .. startswith"),
    _rule("deserialisation", r"\bpickle\.loads?\(|\bcPickle\.loads?\(|\byaml\.load\((?![^)]*SafeLoader)|\byaml\.unsafe_load\("
          r"|\bmarshal\.loads?\(|\bjsonpickle\.decode\(|\bObjectInputStream\(|\bshelve\.open\(|\bdill\.loads?\("
          r"|\btorch\.load\((?![^)]*weights_only\s*=\s*True)|\bunserialize\(|\bYAML\.load\(",
          WEAKENS, "pickle yaml.load unsafe_load marshal.load jsonpickle objectinputstream shelve.open dill.load "
                   "torch.load unserialize"),
    _rule("shell", r"\bshell\s*=\s*True\b|\bos\.system\(|\bos\.popen\(|\bcommands\.getoutput\("
          r"|exec\.Command\(\s*\"(?:ba)?sh\",\s*\"-c\"|child_process\.exec\(|\bexecSync\(|Runtime\.getRuntime\(\)\.exec\("
          r"|\bsubprocess\.getoutput\(",
          WEAKENS, "shell os.system os.popen getoutput exec.command child_process execsync getruntime"),
    _rule("code_execution", r"(?<![.\w])eval\(|(?<![.\w])exec\(|\bnew Function\(|\bsetTimeout\(\s*[\"'`]",
          WEAKENS, "eval( exec( new function( settimeout("),
]

# Paired rules: the weak form removed and the strong one added in one file hardens; the reverse weakens.
# (kind, weak, strong, the weak form's triggers, the strong form's triggers)
_PAIRS = [
    ("weak_hash",
     re.compile(r"\b(?:hashlib\.)?(?:md5|sha1)\(|\bMD5\b|\bSHA-?1\b|['\"](?:md5|sha1)['\"]|\bmd5\.New\(|\bsha1\.New\(",
                re.IGNORECASE),
     re.compile(r"\b(?:hashlib\.)?(?:sha256|sha384|sha512|sha3_\w+|blake2\w*)\(|\bSHA-?(?:256|384|512)\b"
                r"|['\"]sha(?:256|384|512)['\"]|\bsha256\.New\(|\bsha512\.New\(|\bargon2|\bbcrypt|\bscrypt|\bpbkdf2",
                re.IGNORECASE),
     ("md5", "sha1", "sha-1"), ("sha", "blake2", "argon2", "bcrypt", "scrypt", "pbkdf2")),
    ("random",
     re.compile(r"\brandom\.(?:random|randint|choice|choices|randrange|getrandbits|sample)\(|\bMath\.random\("
                r"|\"math/rand\"|\brand\.(?:Intn|Int63|Read|Int)\(|\bnew Random\(|\brand\(\)|\bmt_rand\("),
     re.compile(r"\bsecrets\.\w+\(|\bos\.urandom\(|\bcrypto\.randomBytes\(|\bcrypto\.getRandomValues\(|\brandomUUID\("
                r"|\"crypto/rand\"|\bSecureRandom\b|\bOsRng\b|\bgetrandom\(|\brandom_bytes\(|\bSystemRandom\("),
     ("rand",), ("secrets.", "urandom", "random", "crypto/rand", "osrng")),
    ("deserialisation",
     re.compile(r"\byaml\.load\(|\bpickle\.loads?\(|\byaml\.unsafe_load\(|\bYAML\.load\("),
     re.compile(r"\byaml\.safe_load\(|\bSafeLoader\b|\bjson\.loads?\(|\bYAML\.safe_load\("),
     ("yaml", "pickle"), ("safe", "json.load")),
]
_SQL_TRIGGERS = ("select", "insert", "update", "delete")
_SECRET_TRIGGERS = ("pass", "pwd", "secret", "key", "token", "akia", "private key", "ghp_", "gho_", "ghu_", "ghs_",
                    "ghr_", "xox", "sk_live", "aiza", "glpat", "sk-")
_KEY_SIZE_TRIGGERS = ("key", "bits", "modulus", "generate")
_SQL = re.compile(r"\b(?:SELECT\s+.+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE)
_SQL_BUILT = re.compile(r"""\bf["'].*\{|["']\s*%\s*[(\w]|\.format\(|["']\s*\+\s*\w|\$\{|\bfmt\.Sprintf\(|String\.format\(""")
_SQL_PARAMETERS = re.compile(r"""%s|\?|:\w+|\$\d+|@\w+""")
_SECRET_ASSIGNMENT = re.compile(
    r"""\b([\w-]*(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth[_-]?token"""
    r"""|access[_-]?token|secret[_-]?key|client[_-]?secret|token))\b["']?\s*[:=]+\s*(?:b|r)?["']([^"'\s]{8,})["']""",
    re.IGNORECASE,
)
_SECRET_SHAPES = re.compile(
    r"\bAKIA[0-9A-Z]{16}\b|-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY-----|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bsk_live_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_\-]{35}\b"
    r"|\bglpat-[A-Za-z0-9_\-]{20}\b|\bsk-[A-Za-z0-9]{32,}\b"
)
_PLACEHOLDER = re.compile(
    r"changeme|change[_-]?me|example|placeholder|dummy|sample|fake|test|xxxx|\*\*\*|<[^>]*>|\$\{|\{\{|%\(|your[_-]"
    r"|0123456789|abcdef|123456|redacted|secret[_-]?key[_-]?here|not[_-]?a[_-]?secret|insecure|dev[_-]?only|localhost|environ|getenv|os\.|config\."
    r"|\.get\(|^[a-z_]+$|^[A-Z_]+$|^\d+$",
    re.IGNORECASE,
)
_KEY_SIZE = re.compile(r"\b(?:key_?size|keysize|bits|modulus(?:_size)?|rsa_bits)\s*[=:]\s*(\d{3,5})\b"
                       r"|GenerateKey\([^,]*,\s*(\d{3,5})\)|\bRSA\.generate\(\s*(\d{3,5})|\bgenerate_private_key\([^)]*?(\d{4})",
                       re.IGNORECASE)


def _mask(line: str) -> str:
    """A line with secret values replaced by *** so evidence never republishes them."""
    line = _SECRET_ASSIGNMENT.sub(lambda m: m.group(0).replace(m.group(2), "***"), line)
    return _SECRET_SHAPES.sub("***", line)


def _evidence(line: str) -> str:
    return clean(_mask(line.strip()), _EVIDENCE_CHARS)


def _code(lines: list[str], moved: set[str]) -> list[str]:
    """The code lines among lines: no blanks, comments, imports, nor lines the commit moved elsewhere."""
    return [line for line in lines if line.strip() and not _COMMENT.match(line) and not _IMPORT.match(line)
            and line.strip() not in moved]


def _first(pattern: re.Pattern[str], lines: list[str], skip: set[str]) -> str | None:
    for line in lines:
        if pattern.search(line) and line.strip() not in skip:
            return line
    return None


def _secrets(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        assignment = _SECRET_ASSIGNMENT.search(line)
        if _SECRET_SHAPES.search(line) or (assignment and not _PLACEHOLDER.search(assignment.group(2))
                                           and len(set(assignment.group(2))) >= 6):
            found.append(line)
    return found


def _key_sizes(lines: list[str]) -> list[tuple[int, str]]:
    sizes = []
    for line in lines:
        for found in _KEY_SIZE.finditer(line):
            value = next(g for g in found.groups() if g)
            sizes.append((int(value), line))
    return sizes


def moved_lines(files: Sequence[Sequence[Hunk]]) -> tuple[set[str], set[str]]:
    """Every removed and every added line of a commit (stripped): a line on both sides only moved."""
    removed: set[str] = set()
    added: set[str] = set()
    for hunks in files:
        for hunk in hunks:
            for kind, text in hunk.lines:
                if kind == REMOVED:
                    removed.add(text.strip())
                elif kind == ADDED:
                    added.add(text.strip())
    return removed, added


def file_signals(filename: str, role: str, hunks: Sequence[Hunk], *, status: str = "modified",
                 commit_removed: set[str] | None = None, commit_added: set[str] | None = None
                 ) -> list[SecuritySignal]:
    """The security signals of one file's hunks; none for tests, docs and other non-code roles."""
    # commit_removed and commit_added are the whole commit's changed lines (see moved_lines): a line
    # removed here and added in another file moved, and says nothing. A new file hardens nothing (it
    # had no protection to add to) and a deleted one weakens nothing: only the other direction counts.
    if role in _SKIPPED_ROLES or not hunks:
        return []
    removed = Lines(_code([text for hunk in hunks for kind, text in hunk.lines if kind == REMOVED],
                          commit_added or set()))
    added = Lines(_code([text for hunk in hunks for kind, text in hunk.lines if kind == ADDED],
                        commit_removed or set()))
    removed_set = {line.strip() for line in removed.lines}
    added_set = {line.strip() for line in added.lines}
    file = clean(filename, 200)
    signals: list[SecuritySignal] = []

    def signal(kind: str, direction: str, line: str) -> None:
        if (status == "added" and direction == HARDENS) or (status == "removed" and direction == WEAKENS):
            return
        # One signal per kind and direction in a file: the first (and most specific) evidence wins.
        if not any(s.kind == kind and s.direction == direction for s in signals):
            signals.append(SecuritySignal(kind, direction, file, role, _evidence(line)))

    for kind, weak, strong, weak_triggers, strong_triggers in _PAIRS:
        weak_removed, weak_added = removed.having(weak_triggers), added.having(weak_triggers)
        strong_removed, strong_added = removed.having(strong_triggers), added.having(strong_triggers)
        weak_gone, strong_new = _first(weak, weak_removed, added_set), _first(strong, strong_added, removed_set)
        if weak_gone and strong_new and not any(weak.search(line) for line in weak_added):
            signal(kind, HARDENS, strong_new)
        weak_new, strong_gone = _first(weak, weak_added, removed_set), _first(strong, strong_removed, added_set)
        if weak_new and strong_gone and not any(strong.search(line) for line in strong_added):
            signal(kind, WEAKENS, weak_new)

    for rule in _RULES:
        gaining, losing = added.having(rule.triggers), removed.having(rule.triggers)
        gained = sum(len(rule.pattern.findall(line)) for line in gaining)
        lost = sum(len(rule.pattern.findall(line)) for line in losing)
        if gained > lost:
            line = _first(rule.pattern, gaining, removed_set)
            if line is not None:
                signal(rule.kind, rule.added, line)
        elif lost > gained:
            line = _first(rule.pattern, losing, added_set)
            if line is not None:
                signal(rule.kind, WEAKENS if rule.added == HARDENS else HARDENS, line)

    sql_removed = [line for line in removed.having(_SQL_TRIGGERS) if _SQL.search(line)]
    sql_added = [line for line in added.having(_SQL_TRIGGERS) if _SQL.search(line)]
    built_gone = [line for line in sql_removed if _SQL_BUILT.search(line)]
    built_new = [line for line in sql_added if _SQL_BUILT.search(line) and line.strip() not in removed_set]
    parameterised = [line for line in sql_added if not _SQL_BUILT.search(line) and _SQL_PARAMETERS.search(line)]
    if built_gone and parameterised and not built_new:
        signal("sql", HARDENS, parameterised[0])
    elif built_new and len(built_new) > len(built_gone):
        signal("sql", WEAKENS, built_new[0])

    secrets_new = [line for line in _secrets(added.having(_SECRET_TRIGGERS)) if line.strip() not in removed_set]
    secrets_gone = [line for line in _secrets(removed.having(_SECRET_TRIGGERS)) if line.strip() not in added_set]
    if secrets_new:
        signal("secret", WEAKENS, secrets_new[0])
    elif secrets_gone:
        signal("secret", HARDENS, secrets_gone[0])

    new_sizes = _key_sizes(added.having(_KEY_SIZE_TRIGGERS))
    if new_sizes:
        old_sizes = _key_sizes(removed.having(_KEY_SIZE_TRIGGERS))
        smallest_new = min(size for size, _line in new_sizes)
        smallest_old = min((size for size, _line in old_sizes), default=None)
        line = next(text for size, text in new_sizes if size == smallest_new)
        if smallest_new < 2048 and (smallest_old is None or smallest_new < smallest_old):
            signal("key_size", WEAKENS, line)
        elif smallest_old is not None and smallest_old < 2048 <= smallest_new:
            signal("key_size", HARDENS, line)
    return signals
