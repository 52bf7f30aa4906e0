"""docker-compose.yml without a Docker engine: the Compose schema, and every command, option, port and
environment variable it names checked against the code (typer app, mlflow's CLI, Settings, nginx.conf).

Each checker returns a list of problems; the tests assert the real files have none and that a broken copy
of the file is caught, so a check can never pass by looking at nothing.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import typer.main
import yaml

from service.cli.config_doc import all_env_names
from service.cli.main import app
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX = ROOT / "deploy" / "nginx.conf"
SCHEMA = ROOT / "deploy" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, $VAR; `$$` escapes.
_VAR = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_ENV_LINE = re.compile(r"^\s*(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# ----- loading ---------------------------------------------------------------------------------------


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def env_example(*, commented: bool = False) -> dict[str, str]:
    """KEY=VALUE lines of .env.example; with `commented`, also `# KEY=VALUE` examples."""
    found = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match and (commented or not match["comment"]):
            found[match["name"]] = match["value"].strip()
    return found


def referenced_variables(node: Any) -> set[str]:
    """Names the compose file interpolates."""
    if isinstance(node, dict):
        return set().union(*(referenced_variables(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(referenced_variables(v) for v in node)) if node else set()
    if isinstance(node, str):
        return {m["braced"] or m["bare"] for m in _VAR.finditer(node) if m.group(0) != "$$"}
    return set()


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (the subset the file uses), as `docker compose config` does."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        op, arg, value = match["op"], match["arg"] or "", env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and unset_or_empty:
            return arg
        if op in (":?", "?") and unset_or_empty:
            raise KeyError(f"required variable {name} is not set: {arg}")
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _VAR.sub(sub, node)


def cast_types(doc: dict[str, Any]) -> dict[str, Any]:
    """Interpolated values are strings; like compose-go's type-cast mapping, turn the numeric ones we
    interpolate back into numbers before validation."""
    for svc in doc["services"].values():
        deploy = svc.get("deploy") or {}
        if isinstance(deploy.get("replicas"), str):
            deploy["replicas"] = int(deploy["replicas"])
    return doc


@cache
def compose() -> dict[str, Any]:
    return cast_types(interpolate(raw_compose(), env_example()))


def argv(service: dict[str, Any]) -> list[list[str]]:
    """The `driftloop ...` command lines a service runs (the image's entrypoint is `driftloop`)."""
    entrypoint = service.get("entrypoint")
    command = service.get("command") or []
    command = shlex.split(command) if isinstance(command, str) else list(command)
    if entrypoint is None:
        return [["driftloop", *command]] if service.get("build") else []
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)
    if entrypoint == ["sh", "-c"]:
        return [shlex.split(part) for part in " ".join(command).split("&&")]
    return [[*entrypoint, *command]]


def driftloop_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in doc["services"].items()
        if any(line and line[0] == "driftloop" for line in argv(svc))
    }


# ----- CLI resolution --------------------------------------------------------------------------------


@cache
def mlflow_cli() -> Any:
    from mlflow.cli import cli

    return cli


class CommandError(Exception):
    """A command line the CLI would refuse."""


def _is_usage_error(exc: Exception) -> bool:
    # click's and typer's vendored click (typer >= 0.29) have separate exception classes
    return isinstance(exc, CommandError) or type(exc).__name__ in {
        "UsageError", "BadParameter", "NoSuchOption", "BadOptionUsage", "MissingParameter", "BadArgumentUsage"
    }  # fmt: skip


def parse(root: Any, args: list[str], prog: str) -> tuple[str, dict[str, Any]]:
    """Resolve subcommands and parse options exactly as the CLI would, without running anything.
    Returns ("sub command path", parsed params); raises on unknown names or bad values."""
    cmd, path, rest = root, [prog], list(args)
    while hasattr(cmd, "get_command"):  # a group (click's or typer's vendored click)
        if not rest:
            raise CommandError(f"{' '.join(path)}: no subcommand")
        name = rest.pop(0)
        sub = cmd.get_command(cmd.context_class(cmd), name)
        if sub is None:
            raise CommandError(f"{' '.join(path)} has no command {name!r}")
        cmd, path = sub, [*path, name]
    ctx = cmd.make_context(" ".join(path), rest)
    return " ".join(path[1:]), dict(ctx.params)


def parsed_commands(doc: dict[str, Any]) -> tuple[list[str], dict[str, list[tuple[str, dict[str, Any]]]]]:
    problems: list[str] = []
    parsed: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    driftloop = typer.main.get_command(app)
    for name, svc in doc["services"].items():
        for line in argv(svc):
            roots = {"driftloop": driftloop, "mlflow": mlflow_cli()}
            if not line or line[0] not in roots:
                continue
            try:
                parsed.setdefault(name, []).append(parse(roots[line[0]], line[1:], line[0]))
            except Exception as exc:
                if not _is_usage_error(exc):
                    raise
                problems.append(f"{name}: `{' '.join(line)}`: {exc}")
    return problems, parsed


def command_problems(doc: dict[str, Any]) -> list[str]:
    problems, parsed = parsed_commands(doc)
    runs = {name: [sub for sub, _ in cmds] for name, cmds in parsed.items()}
    schedulers = [name for name, subs in runs.items() if "scheduler" in subs]
    if len(schedulers) != 1:
        problems.append(f"exactly one service must run `driftloop scheduler`, found {schedulers}")
    for name in schedulers:
        replicas = doc["services"][name].get("deploy", {}).get("replicas", 1)
        if int(replicas) != 1:
            problems.append(f"{name}: the scheduler must have one replica, has {replicas}")
    if not any(subs[:2] == ["db upgrade", "bootstrap"] for subs in runs.values()):
        problems.append("no one-shot service runs `driftloop db upgrade` then `driftloop bootstrap`")
    if not any("serve" in subs for subs in runs.values()):
        problems.append("no service runs `driftloop serve`")
    return problems


# ----- ports -----------------------------------------------------------------------------------------


def _url_ports(text: str, host: str | None = None) -> list[int]:
    ports = []
    for url in re.findall(r"https?://[^\s'\";]+", text):
        parts = urlsplit(url)
        if host is None or parts.hostname == host:
            ports.append(parts.port or (443 if parts.scheme == "https" else 80))
    return ports


def _container_ports(svc: dict[str, Any]) -> list[int]:
    return [int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])]


def _healthcheck_text(svc: dict[str, Any]) -> str:
    test = svc.get("healthcheck", {}).get("test", [])
    return " ".join(test) if isinstance(test, list) else str(test)


def port_problems(doc: dict[str, Any], nginx_conf: str) -> list[str]:
    problems, parsed = parsed_commands(doc)
    services = doc["services"]
    bound: dict[str, int] = {}
    for name, cmds in parsed.items():
        for sub, params in cmds:
            if sub in ("serve", "server"):
                bound[name] = int(params["port"])
    for name, port in bound.items():
        svc = services[name]
        for p in _url_ports(_healthcheck_text(svc)):
            if p != port:
                problems.append(f"{name}: healthcheck probes port {p}, the command binds {port}")
        for p in [*_container_ports(svc), *(int(e) for e in svc.get("expose", []))]:
            if p != port:
                problems.append(f"{name}: publishes/exposes {p}, the command binds {port}")
        for other, osvc in services.items():
            env = osvc.get("environment") or {}
            for key, value in env.items() if isinstance(env, dict) else []:
                for p in _url_ports(str(value), host=name):
                    if p != port:
                        problems.append(f"{other}: {key} points at {name}:{p}, {name} binds {port}")
        for p in _url_ports(nginx_conf, host=name):
            if p != port:
                problems.append(f"nginx.conf proxies to {name}:{p}, {name} binds {port}")
    listens = [int(p) for p in re.findall(r"^\s*listen\s+(\d+)\s*;", nginx_conf, re.M)]
    for name, svc in services.items():
        if str(svc.get("image", "")).startswith("nginx") and sorted(_container_ports(svc)) != sorted(listens):
            problems.append(f"{name}: publishes {_container_ports(svc)}, nginx.conf listens on {listens}")
    return problems


# ----- environment -----------------------------------------------------------------------------------


def env_problems(doc: dict[str, Any], example: dict[str, str], raw: dict[str, Any]) -> list[str]:
    problems = []
    known = all_env_names()
    for name, svc in driftloop_services(doc).items():
        env = svc.get("environment") or {}
        for key in env:
            if key.startswith("DRIFTLOOP_") and key not in known:
                problems.append(f"{name}: {key} is not a setting of service.config.Settings")
        settings_env = {k: str(v) for k, v in env.items() if k in known}
        try:
            settings = Settings(_env_file=None, **_as_init(settings_env, known))  # type: ignore[call-arg]
        except Exception as exc:
            problems.append(f"{name}: its DRIFTLOOP_* values do not validate: {exc}")
            continue
        serves = any(sub == "serve" for sub, _ in parsed_commands(doc)[1].get(name, []))
        if serves and settings.embedded_scheduler:
            problems.append(f"{name}: serves with DRIFTLOOP_EMBEDDED_SCHEDULER on")
    for key in env_example(commented=True):
        if key.startswith("DRIFTLOOP_") and key not in known:
            problems.append(f".env.example: {key} is not a setting of service.config.Settings")
    referenced = referenced_variables(raw)
    for key in sorted(referenced - set(example)):
        problems.append(f"docker-compose.yml uses ${{{key}}}, .env.example does not define it")
    for key in sorted(set(example) - referenced - set(known)):
        problems.append(f".env.example defines {key}, which nothing reads")
    return problems


def _as_init(env: dict[str, str], known: dict[str, str]) -> dict[str, Any]:
    """Environment names -> Settings field names (init kwargs take field names)."""
    return {known[k]: v for k, v in env.items()}


# ----- the tests -------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_schema_rejects_a_broken_file() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_command_and_option_exists() -> None:
    assert command_problems(compose()) == []


@pytest.mark.parametrize(
    ("service", "command", "expected"),
    [
        ("api", ["serve", "--host", "0.0.0.0", "--prot", "8000"], "--prot"),
        ("api", ["serve", "--workers", "0"], "--workers"),
        ("scheduler", ["schedule"], "schedule"),
        ("migrate", ["driftloop db upgrade && driftloop bootstrap --if-mising"], "--if-mising"),
        ("mlflow", ["server", "--allowed-host", "x"], "--allowed-host"),
    ],
)
def test_a_wrong_command_is_caught(service: str, command: list[str], expected: str) -> None:
    broken = copy.deepcopy(compose())
    broken["services"][service]["command"] = command
    problems = command_problems(broken)
    assert any(expected in p for p in problems), problems


def test_a_second_scheduler_is_caught() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["scheduler"]["deploy"]["replicas"] = 2
    broken["services"]["worker2"] = copy.deepcopy(broken["services"]["scheduler"])
    problems = command_problems(broken)
    assert any("exactly one" in p for p in problems) and any("one replica" in p for p in problems)


def test_every_port_is_the_one_its_command_binds() -> None:
    assert port_problems(compose(), NGINX.read_text(encoding="utf-8")) == []


def test_a_port_mismatch_is_caught() -> None:
    nginx = NGINX.read_text(encoding="utf-8")
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["command"][broken["services"]["api"]["command"].index("--port") + 1] = "9000"
    problems = port_problems(broken, nginx)
    assert any("healthcheck probes port 8000" in p for p in problems)
    assert any("nginx.conf proxies to api:8000" in p for p in problems)
    broken = copy.deepcopy(compose())
    broken["services"]["migrate"]["environment"]["MLFLOW_TRACKING_URI"] = "http://mlflow:5001"
    assert any("MLFLOW_TRACKING_URI points at mlflow:5001" in p for p in port_problems(broken, nginx))
    assert any("listens on" in p for p in port_problems(compose(), nginx.replace("listen 8080", "listen 81")))


def test_every_environment_variable_is_a_setting_and_documented() -> None:
    assert env_problems(compose(), env_example(), raw_compose()) == []


def test_an_unknown_or_invalid_variable_is_caught() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["environment"]["DRIFTLOOP_MODEL_POL_SECONDS"] = "5"
    broken["services"]["scheduler"]["environment"]["DRIFTLOOP_DRIFT_CHECK_INTERVAL"] = "-1"
    broken["services"]["api"]["environment"]["DRIFTLOOP_EMBEDDED_SCHEDULER"] = "true"
    problems = env_problems(broken, env_example(), raw_compose())
    assert any("DRIFTLOOP_MODEL_POL_SECONDS is not a setting" in p for p in problems)
    assert any(p.startswith("scheduler: its DRIFTLOOP_* values do not validate") for p in problems)
    assert any("serves with DRIFTLOOP_EMBEDDED_SCHEDULER on" in p for p in problems)
    raw = copy.deepcopy(raw_compose())
    raw["services"]["api"]["environment"]["X"] = "${NOT_IN_ENV_EXAMPLE:-1}"
    assert any("NOT_IN_ENV_EXAMPLE" in p for p in env_problems(compose(), env_example(), raw))


def test_the_api_sums_metrics_over_its_workers_from_a_tmpfs() -> None:
    api = compose()["services"]["api"]
    folder = api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    tmpfs = [v["target"] for v in api["volumes"] if isinstance(v, dict) and v.get("type") == "tmpfs"]
    assert folder in tmpfs


def test_health_dependencies_point_at_services_with_a_healthcheck() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy; it has no check"
                )
            if spec["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is one-shot: restart must be 'no'"
    named = set(compose().get("volumes") or {})
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/")):
                assert source in named, f"{name} mounts undeclared volume {source}"


def test_dockerfile_installs_the_project_and_runs_driftloop_unprivileged() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "driftloop" in project["project"]["scripts"]
    assert re.search(r'^ENTRYPOINT \["driftloop"\]$', text, re.M)
    for package in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert re.search(rf"^COPY {package.rstrip('*')} ", text, re.M), f"{package} is not copied"
    for path in ("alembic ", "alembic.ini "):  # service.db.engine migrates from the project root
        assert re.search(rf"^COPY {path}", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".git", ".env"} <= set(ignored)
