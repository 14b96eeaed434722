"""Commit facts, security: protection added to or taken from the code, read from the diff, not the words."""
from __future__ import annotations

import pytest

from newsletter.analysis.facts import commit_facts
from tests.diffs import change, commit


def found(*files, message="Update code"):
    return {(s.kind, s.direction): s for s in commit_facts(commit(*files, message=message)).security}


@pytest.mark.parametrize("path, old, new, kind, direction", [
    ("app/views.py",
     "def show(name):\n    return f'<p>{name}</p>'\n",
     "def show(name):\n    return f'<p>{html.escape(name)}</p>'\n", "escaping", "hardens"),
    ("web/src/comment.tsx",
     "export const Comment = ({ body }) => <div>{body}</div>;\n",
     "export const Comment = ({ body }) => <div dangerouslySetInnerHTML={{ __html: body }} />;\n",
     "escaping", "weakens"),
    ("app/upload.py",
     "def upload(request):\n    data = request.stream.read()\n",
     "MAX_UPLOAD_BYTES = 10 * 1024 * 1024\n\n\ndef upload(request):\n    data = request.stream.read(MAX_UPLOAD_BYTES)\n",
     "input_limit", "hardens"),
    ("app/admin.py",
     "@app.route('/admin')\n@login_required\ndef admin():\n    return render('admin.html')\n",
     "@app.route('/admin')\ndef admin():\n    return render('admin.html')\n", "auth_check", "weakens"),
    ("app/webhooks.py",
     "def valid(signature, expected):\n    return signature == expected\n",
     "def valid(signature, expected):\n    return hmac.compare_digest(signature, expected)\n", "constant_time", "hardens"),
    ("app/client.py",
     "resp = requests.get(url, timeout=10)\n",
     "resp = requests.get(url, timeout=10, verify=False)\n", "tls", "weakens"),
    ("pkg/client/tls.go",
     "cfg := &tls.Config{InsecureSkipVerify: true}\n",
     "cfg := &tls.Config{MinVersion: tls.VersionTLS12}\n", "tls", "hardens"),
    ("app/files.py",
     "def serve(name):\n    return open(os.path.join(ROOT, name)).read()\n",
     "def serve(name):\n    path = os.path.realpath(os.path.join(ROOT, name))\n"
     "    if os.path.commonpath([path, ROOT]) != ROOT:\n        raise PermissionError(name)\n    return open(path).read()\n",
     "path_restriction", "hardens"),
    ("app/settings.py",
     "SECRET_KEY = os.environ['SECRET_KEY']\n",
     "SECRET_KEY = 'q8Zr2mX7pL0vB4nK9sW1'\n", "secret", "weakens"),
    ("app/loader.py",
     "def load(text):\n    return yaml.load(text)\n",
     "def load(text):\n    return yaml.safe_load(text)\n", "deserialisation", "hardens"),
    ("tools/run.py",
     "subprocess.run(['git', 'pull'], check=True)\n",
     "subprocess.run(f'git pull {branch}', shell=True, check=True)\n", "shell", "weakens"),
    ("app/tokens.py",
     "def reset_token():\n    return ''.join(random.choice(ALPHABET) for _ in range(32))\n",
     "def reset_token():\n    return secrets.token_urlsafe(32)\n", "random", "hardens"),
    ("app/cache.py",
     "def fingerprint(data):\n    return hashlib.md5(data).hexdigest()\n",
     "def fingerprint(data):\n    return hashlib.sha256(data).hexdigest()\n", "weak_hash", "hardens"),
    ("app/db.py",
     "def find(cur, name):\n    cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")\n",
     "def find(cur, name):\n    cur.execute(\"SELECT * FROM users WHERE name = %s\", (name,))\n", "sql", "hardens"),
    ("app/forms.py",
     "app.config['WTF_CSRF_ENABLED'] = True\n",
     "app.config['WTF_CSRF_ENABLED'] = False\n", "csrf", "weakens"),
    ("app/keys.py",
     "key = rsa.generate_private_key(public_exponent=65537, key_size=1024)\n",
     "key = rsa.generate_private_key(public_exponent=65537, key_size=4096)\n", "key_size", "hardens"),
])
def test_signal_kinds(path, old, new, kind, direction):
    signals = found(change(path, old, new))
    assert (kind, direction) in signals, signals
    assert signals[(kind, direction)].role == "source"


def test_tokenizer_is_not_security():
    old = '''
        class Tokenizer:
            def tokenize(self, text):
                return text.split()
    '''
    new = '''
        class Tokenizer:
            def tokenize(self, text, lower=False):
                tokens = text.split()
                return [t.lower() for t in tokens] if lower else tokens

            def token_count(self, text):
                return len(self.tokenize(text))
    '''
    assert found(change("nlp/tokenizer.py", old, new), message="Fix tokenizer security token handling") == {}


def test_test_and_docs_changes_claim_no_hardening():
    test_old = "def test_escape():\n    assert render('<b>') == '<b>'\n"
    test_new = "def test_escape():\n    assert render('<b>') == html.escape('<b>')\n    assert hmac.compare_digest(a, b)\n"
    docs_new = "Always call `html.escape(value)` and use `secrets.token_urlsafe()`.\n"
    assert found(change("tests/test_render.py", test_old, test_new), change("docs/security.md", "", docs_new)) == {}


def test_a_moved_line_says_nothing():
    old = "def a():\n    return html.escape(x)\n\n\ndef b():\n    return 1\n"
    new = "def b():\n    return 1\n\n\ndef a():\n    return html.escape(x)\n"
    assert found(change("app/render.py", old, new)) == {}


def test_comments_do_not_count():
    new = "def admin():\n    # TODO: add @login_required and verify=False removal\n    return page()\n"
    assert found(change("app/admin.py", "def admin():\n    return page()\n", new)) == {}


def test_secret_evidence_is_masked_and_placeholders_are_not_secrets():
    signals = found(change("deploy/settings.py", "", "AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'\n"
                           "API_TOKEN = 'ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789'\n"))
    evidence = signals[("secret", "weakens")].evidence
    assert "AKIA" not in evidence and "ghp_" not in evidence and "***" in evidence
    placeholders = "PASSWORD = 'changeme'\nAPI_KEY = '<your-api-key>'\nTOKEN = os.environ['TOKEN']\n"
    assert found(change("app/config.py", "", placeholders)) == {}


def test_removed_hard_coded_secret_hardens():
    old = "DB_PASSWORD = 'Xk29!fPq7zL0m'\n"
    new = "DB_PASSWORD = os.environ['DB_PASSWORD']\n"
    assert ("secret", "hardens") in found(change("app/db_config.py", old, new))


def test_evidence_is_trimmed_and_storable():
    long_line = "    return html.escape(" + "x" * 300 + ")\ufeff\x00\n"
    signal = found(change("app/views.py", "def f(x):\n    return x\n", "def f(x):\n" + long_line))[("escaping", "hardens")]
    assert len(signal.evidence) <= 100 and "\x00" not in signal.evidence


def test_code_moved_to_another_file_says_nothing():
    old = "def render(value):\n    return str(escape(value))\n"
    moved = "from markupsafe import escape\n\n\ndef render(value):\n    return str(escape(value))\n"
    facts = commit_facts(commit(change("app/old_render.py", old, "def other():\n    return 1\n"),
                                change("app/render.py", "def other():\n    return 1\n", moved)))
    assert facts.security == ()


def test_a_new_file_hardens_nothing_but_can_weaken():
    new = ("@app.post('/hook')\n@login_required\ndef hook():\n    data = yaml.load(request.data)\n"
           "    return html.escape(data['name'])\n")
    signals = found(change("app/hooks.py", "", new))
    assert set(signals) == {("deserialisation", "weakens")}


def test_benchmarks_are_not_source():
    old = "def run():\n    return requests.get(URL)\n"
    new = "def run():\n    return requests.get(URL, verify=False)\n"
    assert found(change("bench/load.py", old, new)) == {}
    assert commit_facts(commit(change("bench/load.py", old, new))).only_roles == {"test"}
