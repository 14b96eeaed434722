"""Commit facts, public API: CLI options, environment variables, configuration keys, metrics and routes."""
from __future__ import annotations

from newsletter.analysis.facts import commit_facts
from tests.diffs import change, commit


def signals(*files):
    return {(signal.kind, signal.name): signal for signal in commit_facts(commit(*files)).api}


def test_argparse_option_removed_and_added():
    old = '''
        def build_parser():
            parser = argparse.ArgumentParser()
            parser.add_argument("-v", "--verbose", action="store_true")
            parser.add_argument("--legacy-mode", action="store_true", help="old behaviour")
            parser.add_argument("path")
            return parser
    '''
    new = '''
        def build_parser():
            parser = argparse.ArgumentParser()
            parser.add_argument("-v", "--verbose", action="store_true")
            parser.add_argument("--jobs", type=int, default=1)
            parser.add_argument("path")
            return parser
    '''
    found = signals(change("tool/cli.py", old, new))
    assert found[("cli_option_removed", "--legacy-mode")].breaking
    assert not found[("cli_option_added", "--jobs")].breaking
    assert ("cli_option_removed", "--verbose") not in found


def test_click_option_moved_to_another_file_is_not_removed():
    old = '''
        @click.command()
        @click.option("--dry-run", is_flag=True)
        def sync(dry_run):
            run(dry_run)
    '''
    moved = '''
        @click.command()
        @click.option("--dry-run", is_flag=True)
        def sync(dry_run):
            run(dry_run)
    '''
    found = signals(change("app/commands/old.py", old, ""), change("app/commands/sync.py", "", moved))
    assert not any(kind.startswith("cli_option") for kind, _name in found)


def test_go_flag_and_clap_long_options_removed():
    go_old = '''
        func main() {
        \tlisten := flag.String("listen", ":8080", "address")
        \tdebug := flag.Bool("debug", false, "debug mode")
        \tflag.Parse()
        }
    '''
    go_new = '''
        func main() {
        \tlisten := flag.String("listen", ":8080", "address")
        \tflag.Parse()
        }
    '''
    rust_old = '''
        #[derive(Parser)]
        struct Args {
            #[arg(long)]
            max_depth: usize,
            #[arg(long = "no-color")]
            no_color: bool,
        }
    '''
    rust_new = '''
        #[derive(Parser)]
        struct Args {
            #[arg(long = "no-color")]
            no_color: bool,
        }
    '''
    found = signals(change("cmd/server/main.go", go_old, go_new), change("src/args.rs", rust_old, rust_new))
    assert found[("cli_option_removed", "-debug")].breaking
    assert found[("cli_option_removed", "--max-depth")].breaking
    assert ("cli_option_removed", "--no-color") not in found


def test_environment_variables_read_in_code():
    old = '''
        import os

        TIMEOUT = int(os.environ.get("APP_TIMEOUT", "30"))
        TOKEN = os.getenv("APP_LEGACY_TOKEN")
    '''
    new = '''
        import os

        TIMEOUT = int(os.environ.get("APP_TIMEOUT", "30"))
        REGION = os.environ["APP_REGION"]
    '''
    js_old = "const port = process.env.PORT || 3000;\nconst host = process.env.HOST;\n"
    js_new = "const port = process.env.PORT || 3000;\n"
    found = signals(change("app/settings.py", old, new), change("server/index.js", js_old, js_new))
    assert found[("env_var_removed", "APP_LEGACY_TOKEN")].breaking
    assert found[("env_var_removed", "HOST")].breaking
    assert not found[("env_var_added", "APP_REGION")].breaking
    assert ("env_var_removed", "APP_TIMEOUT") not in found and ("env_var_removed", "PORT") not in found


def test_config_keys_removed():
    env_old = "DATABASE_URL=postgres://localhost/app\nCACHE_TTL=60\nSMTP_HOST=localhost\n"
    env_new = "DATABASE_URL=postgres://localhost/app\nSMTP_HOST=mail.example.com\nSMTP_PORT=587\n"
    yaml_old = "server:\n  port: 8080\n  workers: 4\nlogging:\n  level: info\n"
    yaml_new = "server:\n  port: 8080\nlogging:\n  level: debug\n"
    tsconfig_old = '{\n  "compilerOptions": {\n    "strict": true,\n    "target": "es2019"\n  }\n}\n'
    tsconfig_new = '{\n  "compilerOptions": {\n    "strict": true\n  }\n}\n'
    found = signals(change(".env.example", env_old, env_new), change("config/app.yaml", yaml_old, yaml_new),
                    change("tsconfig.json", tsconfig_old, tsconfig_new))
    assert found[("config_key_removed", "CACHE_TTL")].breaking  # users copy .env.example
    assert not found[("config_key_added", "SMTP_PORT")].breaking
    assert ("config_key_removed", "SMTP_HOST") not in found  # only its value changed
    assert not found[("config_key_removed", "workers")].breaking
    assert ("config_key_removed", "level") not in found
    assert ("config_key_removed", "target") not in found  # a compiler setting, not the project's config


def test_metrics_removed_and_renamed():
    py_old = '''
        from prometheus_client import Counter, Histogram

        REQUESTS = Counter("http_requests_total", "Requests")
        LATENCY = Histogram("request_latency_seconds", "Latency")
        ERRORS = Counter("errors_total", "Errors")
    '''
    py_new = '''
        from prometheus_client import Counter, Histogram

        REQUESTS = Counter("http_requests_total", "Requests")
        LATENCY = Histogram("http_request_duration_seconds", "Latency")
        ERRORS = Counter("errors_total", "Errors")
    '''
    go_old = '''
        var jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
        \tName: "worker_jobs_total",
        \tHelp: "Jobs run.",
        }, []string{"queue"})
    '''
    found = signals(change("app/metrics.py", py_old, py_new), change("worker/metrics.go", go_old, ""))
    renamed = found[("metric_renamed", "http_request_duration_seconds")]
    assert renamed.breaking and renamed.detail == "request_latency_seconds → http_request_duration_seconds"
    assert found[("metric_removed", "worker_jobs_total")].breaking
    assert not any(name == "errors_total" for _kind, name in found)


def test_routes_removed_across_frameworks():
    flask_old = '''
        @bp.route("/users/<int:id>", methods=["DELETE"])
        def delete_user(id):
            return "", 204


        @bp.get("/users")
        def list_users():
            return []
    '''
    flask_new = '''
        @bp.get("/users")
        def list_users():
            return []
    '''
    express_old = "router.get('/health', health);\nrouter.post('/v1/upload', upload);\n"
    express_new = "router.get('/health', health);\nrouter.post('/v2/upload', upload);\n"
    spring_old = '''
        @RestController
        public class OrderController {
            @GetMapping("/orders/{id}")
            public Order get(@PathVariable long id) {
                return repo.find(id);
            }
        }
    '''
    spring_new = '''
        @RestController
        public class OrderController {
        }
    '''
    go_old = 'func routes(mux *http.ServeMux) {\n\tmux.HandleFunc("/debug/vars", vars)\n\tmux.HandleFunc("/", index)\n}\n'
    go_new = 'func routes(mux *http.ServeMux) {\n\tmux.HandleFunc("/", index)\n}\n'
    axum_old = 'fn app() -> Router {\n    Router::new().route("/metrics", get(metrics))\n}\n'
    found = signals(change("app/users.py", flask_old, flask_new), change("web/routes.js", express_old, express_new),
                    change("src/main/java/com/shop/OrderController.java", spring_old, spring_new),
                    change("cmd/web/routes.go", go_old, go_new), change("src/app.rs", axum_old, ""))
    assert found[("route_removed", "DELETE /users/<int:id>")].breaking
    assert found[("route_removed", "POST /v1/upload")].breaking
    assert not found[("route_added", "POST /v2/upload")].breaking
    assert found[("route_removed", "GET /orders/{id}")].breaking
    assert found[("route_removed", "/debug/vars")].breaking
    assert found[("route_removed", "/metrics")].breaking
    assert ("route_removed", "GET /users") not in found and ("route_removed", "GET /health") not in found


def test_test_files_give_no_api_signals():
    old = '''
        def test_cli(runner):
            result = runner.invoke(["--legacy-mode"])
            parser.add_argument("--legacy-mode")
            assert os.environ["CI_TOKEN"]
    '''
    facts = commit_facts(commit(change("tests/test_cli.py", old, "")))
    assert facts.api == ()


def test_breaking_signals_come_first_and_are_capped():
    old = "\n".join(f'parser.add_argument("--option-{i}")' for i in range(30)) + "\n"
    new = "\n".join(f'parser.add_argument("--flag-{i}")' for i in range(10)) + "\n"
    facts = commit_facts(commit(change("tool/cli.py", old, new)))
    assert len(facts.api) == 20 and facts.api_cut == 20
    assert all(signal.breaking for signal in facts.api)


def test_rust_and_java_metrics_and_django_and_actix_routes():
    rust_old = '''
        lazy_static! {
            static ref HITS: IntCounter = register_int_counter!("cache_hits_total", "Cache hits").unwrap();
        }
    '''
    java_old = '''
        public class Metrics {
            static final Counter LOGINS = Counter.build().name("logins_total").help("Logins").register();
        }
    '''
    java_new = '''
        public class Metrics {
        }
    '''
    urls_old = '''
        urlpatterns = [
            path("accounts/login/", views.login),
            path("legacy/export/", views.export),
        ]
    '''
    urls_new = '''
        urlpatterns = [
            path("accounts/login/", views.login),
        ]
    '''
    actix_old = '''
        #[get("/v1/items/{id}")]
        async fn item(path: web::Path<u32>) -> impl Responder {
            HttpResponse::Ok()
        }
    '''
    found = signals(change("src/metrics.rs", rust_old, ""),
                    change("src/main/java/com/app/Metrics.java", java_old, java_new),
                    change("shop/urls.py", urls_old, urls_new), change("src/routes.rs", actix_old, ""))
    assert found[("metric_removed", "cache_hits_total")].breaking
    assert found[("metric_removed", "logins_total")].breaking
    assert found[("route_removed", "legacy/export/")].breaking
    assert found[("route_removed", "GET /v1/items/{id}")].breaking
    assert ("route_removed", "accounts/login/") not in found
