"""Commit facts, symbols: definitions added, removed, renamed, re-signed and modified, per language."""
from __future__ import annotations

from newsletter.analysis.facts import CommitFacts, SymbolChange, commit_facts
from newsletter.sources.commit import FileChange
from tests.diffs import change, commit


def symbols(facts: CommitFacts) -> dict[str, SymbolChange]:
    return {symbol.name: symbol for symbol in facts.symbols}


def test_python_rename_signature_default_and_private_removal():
    old = '''
        """HTTP client."""
        from .base import Base


        class Client(Base):
            def fetch(self, url, timeout=30, retries=3):
                """Fetch url."""
                return self._get(url, timeout)

            def close(self):
                self._pool.clear()
                self._open = False

            def _helper(self):
                return 1


        def connect(host, port=5432):
            conn = make(host)
            conn.open(port)
            return conn
    '''
    new = '''
        """HTTP client."""
        from .base import Base


        class Client(Base):
            def fetch(self, url, timeout=10, retries=3):
                """Fetch url."""
                return self._get(url, timeout)

            def shutdown(self):
                self._pool.clear()
                self._open = False


        def connect(host, port=5432):
            conn = make(host)
            conn.open(port, secure=True)
            return conn
    '''
    facts = commit_facts(commit(change("src/pkg/client.py", old, new)))
    found = symbols(facts)

    assert found["Client.shutdown"].change == "renamed"
    assert found["Client.shutdown"].old_name == "Client.close"
    assert found["Client.shutdown"].public and found["Client.shutdown"].breaking

    fetch = found["Client.fetch"]
    assert fetch.change == "signature" and not fetch.breaking
    assert fetch.detail == "timeout default 30 → 10"
    assert fetch.old_signature == "def fetch(self, url, timeout=30, retries=3):"

    helper = found["Client._helper"]
    assert helper.change == "removed" and not helper.public and not helper.breaking
    assert found["connect"].change == "modified"

    api = {(signal.kind, signal.name): signal for signal in facts.api}
    assert api[("symbol_renamed", "Client.shutdown")].breaking
    assert api[("default_changed", "Client.fetch")].detail == "timeout default 30 → 10"
    assert not api[("default_changed", "Client.fetch")].breaking
    # A private helper removed is no public-API removal.
    assert not any(signal.name == "Client._helper" for signal in facts.api)


def test_python_required_parameter_and_async_are_breaking():
    old = '''
        def render(template, context=None):
            return template.format(**(context or {}))


        def load(path):
            return open(path).read()
    '''
    new = '''
        def render(template, context, strict):
            return template.format(**context)


        async def load(path):
            return open(path).read()
    '''
    found = symbols(commit_facts(commit(change("app/render.py", old, new))))
    render = found["render"]
    assert render.change == "signature" and render.breaking
    assert "context no longer optional" in (render.detail or "")
    assert "adds required parameter strict" in (render.detail or "")
    assert found["load"].breaking and "now async" in (found["load"].detail or "")


def test_python_added_and_removed_files():
    source = '''
        class Parser:
            def parse(self, text):
                return text.split()


        def tokenize(text):
            return list(text)


        def _strip(text):
            return text.strip()
    '''
    added = commit_facts(commit(change("lib/parser.py", "", source)))
    assert {(s.name, s.change) for s in added.symbols} == {
        ("Parser", "added"), ("Parser.parse", "added"), ("tokenize", "added"), ("_strip", "added")}
    assert not added.breaking_api

    removed = commit_facts(commit(change("lib/parser.py", source, "")))
    assert {(s.name, s.change) for s in removed.symbols} == {
        ("Parser", "removed"), ("Parser.parse", "removed"), ("tokenize", "removed"), ("_strip", "removed")}
    breaking = {signal.name for signal in removed.breaking_api}
    assert breaking == {"Parser", "Parser.parse", "tokenize"}


def test_python_hunk_inside_a_method_uses_the_header_class():
    patch = (
        "@@ -41,9 +41,9 @@ class Repository:\n"
        "         self._cache = {}\n"
        "         self._lock = threading.Lock()\n"
        " \n"
        "-    def get(self, key, default=None):\n"
        "+    def get(self, key, default=None, *, refresh=False):\n"
        "         with self._lock:\n"
        "             return self._cache.get(key, default)\n"
        " \n"
    )
    facts = commit_facts(commit(FileChange("store/repository.py", "modified", 1, 1, patch)))
    get = symbols(facts)["Repository.get"]
    assert get.kind == "method" and get.change == "signature" and not get.breaking
    assert get.detail == "adds optional parameter refresh"


def test_python_hunk_starting_inside_a_docstring():
    patch = (
        "@@ -10,12 +10,12 @@ def configure(app):\n"
        "     Args:\n"
        "         app: the application.\n"
        '     """\n'
        "     app.extensions['x'] = True\n"
        " \n"
        " \n"
        "-def teardown(app):\n"
        "+def teardown(app, force=False):\n"
        "     app.extensions.pop('x')\n"
    )
    found = symbols(commit_facts(commit(FileChange("ext/lifecycle.py", "modified", 1, 1, patch))))
    assert found["teardown"].change == "signature"
    assert found["teardown"].detail == "adds optional parameter force"


def test_python_nested_function_is_not_reported_as_public_api():
    patch = (
        "@@ -20,7 +20,7 @@ def outer(items):\n"
        "     total = 0\n"
        " \n"
        "-    def visit(item):\n"
        "+    def visit(item, depth):\n"
        "         return item\n"
        " \n"
        "     return [visit(i) for i in items]\n"
    )
    facts = commit_facts(commit(FileChange("walk.py", "modified", 1, 1, patch)))
    assert not facts.breaking_api
    assert all(symbol.name != "visit" or not symbol.public for symbol in facts.symbols)


def test_python_all_export_removed():
    old = '''
        from .core import load, dump, Loader

        __all__ = [
            "load",
            "dump",
            "Loader",
        ]
    '''
    new = '''
        from .core import load, Loader

        __all__ = [
            "load",
            "Loader",
        ]
    '''
    facts = commit_facts(commit(change("yamlish/__init__.py", old, new)))
    assert [(s.kind, s.name, s.breaking) for s in facts.api] == [("export_removed", "dump", True)]


def test_tests_and_private_modules_are_not_public_api():
    old = '''
        def make_user(name):
            return {"name": name}
    '''
    facts = commit_facts(commit(change("tests/factories.py", old, ""), change("pkg/_internal/util.py", old, "")))
    assert {s.change for s in facts.symbols} == {"removed"}
    assert not any(s.public for s in facts.symbols)
    assert not facts.api


def test_javascript_export_matters():
    old = '''
        import fs from "fs";

        export function readConfig(path, encoding = "utf8") {
          return JSON.parse(fs.readFileSync(path, encoding));
        }

        function cacheKey(path) {
          return `config:${path}`;
        }

        export const watch = (path, onChange) => {
          fs.watch(path, onChange);
        };
    '''
    new = '''
        import fs from "fs";

        export function readConfig(path, encoding = "utf-8") {
          return JSON.parse(fs.readFileSync(path, encoding));
        }
    '''
    facts = commit_facts(commit(change("src/config.js", old, new)))
    found = symbols(facts)
    assert found["readConfig"].detail == 'encoding default "utf8" → "utf-8"'
    assert found["cacheKey"].change == "removed" and not found["cacheKey"].public
    assert found["watch"].change == "removed" and found["watch"].public
    assert [s.name for s in facts.breaking_api] == ["watch"]


def test_typescript_class_interface_and_optional_parameter():
    old = '''
        export interface Options {
          retries: number;
        }

        export class Store<T> {
          constructor(private readonly db: Db) {}

          get(key: string): Promise<T> {
            return this.db.get(key);
          }

          private evict(key: string) {
            this.db.delete(key);
          }
        }
    '''
    new = '''
        export interface Options {
          retries: number;
          timeoutMs?: number;
        }

        export class Store<T> {
          constructor(private readonly db: Db) {}

          get(key: string, fallback?: T): Promise<T> {
            return this.db.get(key) ?? fallback;
          }

          private evictAll() {
            this.db.clear();
          }
        }
    '''
    facts = commit_facts(commit(change("src/store.ts", old, new)))
    found = symbols(facts)
    assert found["Options"].change == "modified" and found["Options"].kind == "interface"
    assert found["Store.get"].change == "signature" and not found["Store.get"].breaking
    assert found["Store.get"].detail == "adds optional parameter fallback"
    assert not found["Store.evict"].public
    assert not facts.breaking_api


def test_tsx_component_props_changed():
    old = '''
        import React from "react";

        export function Button({ label, onClick }: Props) {
          return <button onClick={onClick}>{label}</button>;
        }
    '''
    new = '''
        import React from "react";

        export function Button({ label, onClick }: Props, size: "s" | "m") {
          return <button className={size} onClick={onClick}>{label}</button>;
        }
    '''
    found = symbols(commit_facts(commit(change("web/components/Button.tsx", old, new))))
    assert found["Button"].language == "typescript"
    assert found["Button"].change == "signature" and found["Button"].breaking


def test_go_exported_names_and_methods():
    old = '''
        package server

        // Server serves the API.
        type Server struct {
        \taddr string
        }

        // NewServer makes a server.
        func NewServer(addr string) *Server {
        \treturn &Server{addr: addr}
        }

        func (s *Server) Start(ctx context.Context) error {
        \treturn s.listen(ctx)
        }

        func (s *Server) listen(ctx context.Context) error {
        \treturn nil
        }
    '''
    new = '''
        package server

        // Server serves the API.
        type Server struct {
        \taddr string
        }

        // newServer makes a server.
        func newServer(addr string) *Server {
        \treturn &Server{addr: addr}
        }

        func (s *Server) Start(ctx context.Context, addr string) error {
        \treturn s.listen(ctx)
        }

        func (s *Server) listen(ctx context.Context, backlog int) error {
        \treturn nil
        }
    '''
    facts = commit_facts(commit(change("server/server.go", old, new)))
    found = symbols(facts)
    assert found["newServer"].change == "renamed" and found["newServer"].old_name == "NewServer"
    assert found["Server.Start"].breaking
    assert found["Server.Start"].detail == "parameters (context.Context) → (context.Context, string)"
    assert not found["Server.listen"].public
    assert {s.name for s in facts.breaking_api} == {"newServer", "Server.Start"}


def test_go_internal_package_is_not_public():
    old = '''
        package cache

        func Get(key string) string {
        \treturn ""
        }
    '''
    facts = commit_facts(commit(change("internal/cache/cache.go", old, "")))
    assert symbols(facts)["Get"].change == "removed"
    assert not facts.breaking_api


def test_rust_pub_trait_impl_and_private():
    old = '''
        use std::fmt;

        pub struct Config {
            pub name: String,
        }

        pub fn parse(input: &str) -> Result<Config, Error> {
            todo!()
        }

        fn helper(x: u32) -> u32 {
            x + 1
        }

        impl fmt::Display for Config {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}", self.name)
            }
        }

        impl Config {
            pub fn new(name: &str) -> Self {
                Self { name: name.into() }
            }
        }
    '''
    new = '''
        use std::fmt;

        pub struct Config {
            pub name: String,
        }

        pub fn parse(input: &str, strict: bool) -> Result<Config, Error> {
            todo!()
        }

        impl fmt::Display for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "config {}", self.name)
            }
        }

        impl Config {
            pub fn new(name: &str) -> Self {
                Self { name: name.to_owned() }
            }
        }
    '''
    facts = commit_facts(commit(change("src/config.rs", old, new)))
    found = symbols(facts)
    assert found["parse"].breaking and found["parse"].detail == "parameters (&str) → (&str, bool)"
    assert found["helper"].change == "removed" and not found["helper"].public
    assert not found["Config.fmt"].public and not found["Config.fmt"].breaking
    assert found["Config.new"].change == "modified" and found["Config.new"].public
    assert [s.name for s in facts.breaking_api] == ["parse"]


def test_java_public_and_private_methods():
    old = '''
        package com.example;

        public class UserService {
            private final Repo repo;

            public User find(String id) {
                return repo.find(id);
            }

            public void delete(String id) {
                repo.delete(id);
            }

            private void audit(String id) {
                log.info(id);
            }
        }
    '''
    new = '''
        package com.example;

        public class UserService {
            private final Repo repo;

            public User find(String id, boolean cached) {
                return repo.find(id);
            }
        }
    '''
    facts = commit_facts(commit(change("src/main/java/com/example/UserService.java", old, new)))
    found = symbols(facts)
    assert found["UserService.find"].breaking
    assert found["UserService.delete"].change == "removed" and found["UserService.delete"].public
    assert found["UserService.audit"].change == "removed" and not found["UserService.audit"].public
    assert {s.name for s in facts.breaking_api} == {"UserService.find", "UserService.delete"}


def test_c_header_prototypes_are_public_and_static_and_sources_are_not():
    old = '''
        #ifndef LIB_H
        #define LIB_H

        int lib_open(const char *path, int flags);
        void lib_close(struct lib *l);
        static int lib_helper(void);

        #endif
    '''
    new = '''
        #ifndef LIB_H
        #define LIB_H

        int lib_open(const char *path, int flags, int mode);
        static int lib_helper2(void);

        #endif
    '''
    source_old = '''
        #include "lib.h"

        int lib_open(const char *path, int flags) {
            return open(path, flags);
        }
    '''
    source_new = '''
        #include "lib.h"

        int lib_open(const char *path, int flags, int mode) {
            return open(path, flags, mode);
        }
    '''
    facts = commit_facts(commit(change("include/lib.h", old, new), change("src/lib.c", source_old, source_new)))
    by_file = {(s.file, s.name): s for s in facts.symbols}
    header_open = by_file[("include/lib.h", "lib_open")]
    assert header_open.breaking and header_open.detail == "parameters (const char *, int) → (const char *, int, int)"
    assert by_file[("include/lib.h", "lib_close")].change == "removed"
    helper = by_file[("include/lib.h", "lib_helper2")]
    assert helper.change == "renamed" and helper.old_name == "lib_helper" and not helper.public
    assert not by_file[("src/lib.c", "lib_open")].public
    assert {(s.name, s.file) for s in facts.breaking_api} == {("lib_open", "include/lib.h"), ("lib_close", "include/lib.h")}


def test_cpp_class_sections_and_out_of_line_methods():
    old = '''
        namespace app {

        class Widget : public Base {
         public:
          explicit Widget(int size = 3);
          int area() const;

         private:
          void recompute(int);
        };

        }  // namespace app
    '''
    new = '''
        namespace app {

        class Widget : public Base {
         public:
          explicit Widget(int size = 4);
          int area() const;
          void resize(int w, int h);

         private:
          void recompute(long);
        };

        }  // namespace app
    '''
    source_old = '''
        #include "widget.hpp"

        int Widget::area() const {
          return w_ * h_;
        }
    '''
    source_new = '''
        #include "widget.hpp"

        int Widget::area() const {
          return w_ * h_ + border_;
        }
    '''
    facts = commit_facts(commit(change("include/app/widget.hpp", old, new), change("src/widget.cpp", source_old, source_new)))
    by_file = {(s.file, s.name): s for s in facts.symbols}
    constructor = by_file[("include/app/widget.hpp", "Widget.Widget")]
    assert constructor.change == "signature" and constructor.detail == "size default 3 → 4" and not constructor.breaking
    assert by_file[("include/app/widget.hpp", "Widget.resize")].change == "added"
    assert not by_file[("include/app/widget.hpp", "Widget.recompute")].public
    assert by_file[("src/widget.cpp", "Widget.area")].change == "modified"
    assert not facts.breaking_api


def test_reformatted_signature_is_not_a_signature_change():
    old = '''
        def send(message, recipients, *, retries=3, timeout=10.0):
            return transport.send(message, recipients)
    '''
    new = '''
        def send(
            message,
            recipients,
            *,
            retries=3,
            timeout=10.0,
        ):
            return transport.send(message, recipients)
    '''
    facts = commit_facts(commit(change("mail/send.py", old, new)))
    assert [s.change for s in facts.symbols] == ["modified"]
    assert facts.whitespace_only


def test_symbols_are_capped_with_a_count_of_what_was_cut():
    source = "\n".join(f"def handler_{i}(event):\n    return {i}\n\n" for i in range(60))
    facts = commit_facts(commit(change("app/handlers.py", "", source)))
    assert len(facts.symbols) == 40 and facts.symbols_cut == 20
    assert facts.to_dict()["symbols_cut"] == 20


def test_unknown_language_and_oversized_patch_give_no_symbols():
    kotlin = change("app/Main.kt", "fun main() {}\n", "fun main(args: Array<String>) {}\n")
    big = "".join(f"+def f{i}(x):\n+    return x\n" for i in range(20_000))
    huge = FileChange("gen/big.py", "added", 40_000, 0, f"@@ -0,0 +1,40000 @@\n{big}")
    facts = commit_facts(commit(kotlin, huge))
    assert facts.symbols == ()
    assert facts.roles["source"].files == 2
