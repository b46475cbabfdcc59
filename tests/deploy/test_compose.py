"""Checks of the production stack without a Docker engine.

Two layers:
- structural checks in Python on docker-compose.yml, Dockerfile, .dockerignore and deploy/.env.example
  (always run);
- ``docker compose config`` validation by a real Compose implementation: the Compose v2 plugin when
  present, else Debian's ``docker-compose`` package (apt-get install docker-compose). Skipped, with
  that reason, only when neither is installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
VALIDATORS = [f"validator-{i}" for i in range(1, 5)]
ONE_SHOT = {"besu-init", "deploy"}
LONG_RUNNING = {*VALIDATORS, "postgres", "gateway", "worker", "analysis"}
WORKERS = ("worker", "analysis")  # the background queues, split over two processes
SECRET_VARS = {
    "QCN_POSTGRES_PASSWORD",
    "QCN_ADMIN_KEY",
    "QCN_RELAYER_KEY",
    "QCN_REGISTRAR_KEY",
    "QCN_ARBITER_KEY",
    "QCN_API_ADMIN_TOKEN",
}
FUNDED_KEYS = ("QCN_ADMIN_KEY", "QCN_RELAYER_KEY", "QCN_REGISTRAR_KEY", "QCN_ARBITER_KEY")
REQUIRED_REF = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]+\}")
ANY_REF = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _flags(service: dict[str, Any]) -> dict[str, str]:
    """Besu ``--name=value`` command arguments as a dict."""
    out = {}
    for arg in service["command"]:
        name, _, value = arg.partition("=")
        out[name] = value
    return out


def _default(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way Compose does when VAR is unset."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


# --- shape -------------------------------------------------------------------------------------


def test_compose_spec_without_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert set(compose["services"]) == LONG_RUNNING | ONE_SHOT


def test_long_running_services_have_healthchecks_and_restart_policies(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck command"
        assert not service.get("healthcheck", {}).get("disable", False), name


def test_one_shot_services_do_not_restart_and_are_awaited_to_completion(services: dict[str, Any]) -> None:
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    awaited = {
        (dependent, dep)
        for dependent, service in services.items()
        for dep, cond in service.get("depends_on", {}).items()
        if dep in ONE_SHOT and cond["condition"] == "service_completed_successfully"
    }
    assert {(v, "besu-init") for v in VALIDATORS} <= awaited
    assert {("gateway", "deploy"), ("worker", "deploy"), ("analysis", "deploy")} <= awaited


def test_every_dependency_waits_on_a_condition_the_dependency_can_meet(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} health, which has no check"
            else:
                assert condition == "service_completed_successfully" and dep in ONE_SHOT, (name, dep)
    for app in ("gateway", *WORKERS, "deploy"):
        assert services[app]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[app]["depends_on"]["validator-1"]["condition"] == "service_healthy"


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = _default(service["image"])
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned to a tag"
        assert re.search(r"\d+\.\d+", tag), f"{name}: tag {tag!r} is not a version"
    assert services["postgres"]["image"].startswith("postgres:16.")
    assert {services[v]["image"] for v in VALIDATORS} == {services["validator-1"]["image"]}
    assert services["validator-1"]["image"].startswith("hyperledger/besu:")


def test_named_volumes_and_networks_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared_volumes = set(compose["volumes"])
    declared_networks = set(compose["networks"])
    used_volumes = set()
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert not source.startswith((".", "/")), f"{name}: bind mount {source}; use a named volume"
            used_volumes.add(source)
        networks = service.get("networks", {})
        for network in networks if isinstance(networks, list) else networks.keys():
            assert network in declared_networks, f"{name}: undeclared network {network}"
    assert used_volumes == declared_volumes
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


# --- chain -------------------------------------------------------------------------------------


def test_validators_use_their_own_key_and_peer_statically(services: dict[str, Any]) -> None:
    for index, name in enumerate(VALIDATORS, start=1):
        flags = _flags(services[name])
        assert flags["--node-private-key-file"] == f"/besu/node-{index}/key"
        assert flags["--static-nodes-file"] == f"/besu/node-{index}/static-nodes.json"
        assert flags["--genesis-file"] == "/besu/genesis.json"
        assert flags["--min-gas-price"] == "0"
        assert flags["--p2p-host"] == services[name]["networks"]["chain"]["ipv4_address"]
        assert f"besu-data-{index}:/opt/besu/data" in services[name]["volumes"]
        assert "besu-keys:/besu:ro" in services[name]["volumes"]
        assert "ports" not in services[name], f"{name} must not publish ports on the host"


def test_json_rpc_only_on_validator_1_and_only_to_the_backend(services: dict[str, Any]) -> None:
    rpc = _flags(services["validator-1"])
    assert rpc["--rpc-http-enabled"] == "true"
    assert rpc["--rpc-http-api"].split(",") == ["ETH", "NET", "WEB3", "QBFT"]
    assert "backend" in services["validator-1"]["networks"]
    for name in VALIDATORS[1:]:
        flags = _flags(services[name])
        assert not any(flag.startswith(("--rpc-", "--graphql", "--engine-rpc")) for flag in flags), name
        assert set(services[name]["networks"]) == {"chain"}
    for app in ("gateway", *WORKERS, "deploy"):
        assert services[app]["environment"]["QCN_RPC_URL"] == "http://validator-1:8545"


def test_besu_init_generates_the_network_the_validators_expect(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the generator with besu-init's own arguments and compare with the validator definitions."""
    command = [_default(arg) for arg in services["besu-init"]["command"]]
    assert command[:2] == ["python", "scripts/besu_genesis.py"]
    args = [arg for arg in command[2:] if not arg.startswith(("--out=", "--owner="))]
    spec = importlib.util.spec_from_file_location("besu_genesis_compose", ROOT / "scripts" / "besu_genesis.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["besu_genesis_compose"] = module
    spec.loader.exec_module(module)
    for name in FUNDED_KEYS:
        monkeypatch.setenv(name, "0x" + secrets.token_hex(32))
    assert module.main([*args, f"--out={tmp_path}"]) == 0

    network = json.loads((tmp_path / "network.json").read_text())
    assert network["chainId"] == int(_default(services["deploy"]["environment"]["QCN_CHAIN_ID"]))
    assert len(network["funded"]) == len(FUNDED_KEYS)
    for index, name in enumerate(VALIDATORS, start=1):
        ip = services[name]["networks"]["chain"]["ipv4_address"]
        assert network["validators"][index - 1]["enode"].endswith(f"@{ip}:30303")
        peers = json.loads((tmp_path / f"node-{index}" / "static-nodes.json").read_text())
        expected = {services[v]["networks"]["chain"]["ipv4_address"] for v in VALIDATORS if v != name}
        assert {peer.split("@")[1].split(":")[0] for peer in peers} == expected
    genesis = json.loads((tmp_path / "genesis.json").read_text())
    assert genesis["config"]["qbft"]["blockperiodseconds"] == 2
    assert genesis["config"]["zeroBaseFee"] is True
    assert services["besu-init"]["volumes"] == ["besu-keys:/besu"]


def test_only_the_deploy_step_gets_the_admin_key(services: dict[str, Any]) -> None:
    """The gateway and the worker never hold the consortium admin key (docs/trust-model.md)."""
    for name in ("gateway", *WORKERS):
        assert "QCN_ADMIN_KEY" not in services[name]["environment"], name
        assert "QCN_RELAYER_KEY" in services[name]["environment"]
    assert "QCN_ADMIN_KEY" in services["deploy"]["environment"]


def _every_queue_runs_in_exactly_one_worker(services: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.settings import Settings
    from app.worker import AnchorWorker

    idle = AnchorWorker(settings=Settings(env="test"), session_factory=None, chain=None)  # type: ignore[arg-type]
    names = [q.spec.name for q in idle.queues()]  # what it would run: nothing is started
    runs: dict[str, list[str]] = {n: [] for n in names}
    for name in WORKERS:
        command = services[name]["command"]
        assert command[:2] == ["qcn", "worker"], name
        opts = dict(zip(command[2::2], command[3::2], strict=True))
        wanted = set(opts.get("--queues", ",".join(names)).split(",")) - set(opts.get("--exclude", "").split(","))
        for q in wanted:
            runs[q].append(name)
    assert runs == {n: ["analysis"] if n == "analysis" else ["worker"] for n in names}
    assert "--queues" in CliRunner().invoke(cli, ["worker", "--help"]).output


def test_the_workers_split_the_queues_between_them(services: dict[str, Any]) -> None:
    """docker-compose.yml: every background queue runs in exactly one worker service, the analysis alone in its own."""
    _every_queue_runs_in_exactly_one_worker(services)
    assert services["analysis"]["healthcheck"] == services["worker"]["healthcheck"]


def test_postgres_healthcheck_uses_pg_isready(services: dict[str, Any]) -> None:
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


# --- secrets -----------------------------------------------------------------------------------


def test_secrets_come_only_from_required_environment_variables(services: dict[str, Any]) -> None:
    secret_names = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|DATABASE_URL)$")
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if secret_names.search(var):
                refs = REQUIRED_REF.findall(str(value))
                assert refs and set(refs) <= SECRET_VARS, f"{name}.{var} must come from ${{VAR:?...}}"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"(?<![0-9a-fA-F])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])", text), "key-like literal"
    assert set(REQUIRED_REF.findall(text)) == SECRET_VARS
    assert services["gateway"]["ports"] == ["${QCN_HTTP_BIND:-127.0.0.1}:${QCN_HTTP_PORT:-8000}:8000"]


def test_env_example_lists_every_variable_with_placeholders_only() -> None:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    referenced = set(ANY_REF.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert referenced <= set(values), f"missing from .env.example: {referenced - set(values)}"
    for name in SECRET_VARS:
        assert values[name] == "", f"{name} must be an empty placeholder in .env.example"
    gitignore = (ROOT / "deploy" / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore


def test_dockerfile_installs_from_lock_files_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "npm ci" in dockerfile
    for base in re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE):
        assert re.search(r":\d+\.\d+\.\d+", base), f"base image {base} is not pinned"
    assert re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)[-1] not in {"root", "0"}
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "node_modules", ".env", "deploy/.env"} <= set(ignored)


# --- a real Compose implementation ---------------------------------------------------------------


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


COMPOSE = _compose_command()
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="no Compose implementation: install Debian's `docker-compose` package "
    "(apt-get install -y docker-compose) or the docker compose plugin to validate docker-compose.yml",
)


def _run_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path)}
    return subprocess.run(
        [*COMPOSE, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env={**base, **env},
        check=False,
        timeout=60,
    )


def _dummy_secrets() -> dict[str, str]:
    return {
        "QCN_POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "QCN_ADMIN_KEY": "0x" + secrets.token_hex(32),
        "QCN_RELAYER_KEY": "0x" + secrets.token_hex(32),
        "QCN_REGISTRAR_KEY": "0x" + secrets.token_hex(32),
        "QCN_ARBITER_KEY": "0x" + secrets.token_hex(32),
        "QCN_API_ADMIN_TOKEN": secrets.token_urlsafe(16),
    }


@needs_compose
def test_compose_implementation_accepts_the_file(tmp_path: Path) -> None:
    env = _dummy_secrets()
    result = _run_config(env, tmp_path)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    gateway_env = rendered["services"]["gateway"]["environment"]
    assert gateway_env["QCN_RELAYER_KEY"] == env["QCN_RELAYER_KEY"]
    assert gateway_env["QCN_DATABASE_URL"] == (
        f"postgresql+psycopg://qcn:{env['QCN_POSTGRES_PASSWORD']}@postgres:5432/qcn"
    )
    assert str(gateway_env["QCN_CHAIN_ID"]) == "1337"
    assert set(rendered["services"]) == LONG_RUNNING | ONE_SHOT


@needs_compose
@pytest.mark.parametrize("missing", sorted(SECRET_VARS))
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    env = _dummy_secrets()
    del env[missing]
    result = _run_config(env, tmp_path)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


# --- the variant for an existing consortium chain ------------------------------------------------

EXTERNAL_FILE = ROOT / "deploy" / "compose.external-chain.yml"
EXTERNAL_SECRETS = SECRET_VARS | {"QCN_RPC_URL", "QCN_CHAIN_ID"}


def test_external_chain_variant_has_no_validators_and_requires_the_chain_endpoint() -> None:
    external = yaml.safe_load(EXTERNAL_FILE.read_text(encoding="utf-8"))
    assert "version" not in external
    services = external["services"]
    assert set(services) == {"postgres", "deploy", "gateway", *WORKERS}
    _every_queue_runs_in_exactly_one_worker(services)
    for name in ("postgres", "gateway", *WORKERS):
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    assert services["deploy"]["restart"] == "no"
    env = services["gateway"]["environment"]
    assert REQUIRED_REF.findall(env["QCN_RPC_URL"]) == ["QCN_RPC_URL"]
    assert REQUIRED_REF.findall(str(env["QCN_CHAIN_ID"])) == ["QCN_CHAIN_ID"]
    assert set(REQUIRED_REF.findall(EXTERNAL_FILE.read_text(encoding="utf-8"))) == EXTERNAL_SECRETS
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert set(ANY_REF.findall(EXTERNAL_FILE.read_text(encoding="utf-8"))) <= set(
        re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE)
    )


@needs_compose
def test_compose_implementation_accepts_the_external_chain_variant(tmp_path: Path) -> None:
    assert COMPOSE is not None
    env = {**_dummy_secrets(), "QCN_RPC_URL": "http://rpc.consortium.invalid:8545", "QCN_CHAIN_ID": "2026"}
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path)}
    run = [*COMPOSE, "-f", str(EXTERNAL_FILE), "config"]
    result = subprocess.run(run, capture_output=True, text=True, env={**base, **env}, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["services"]["worker"]["environment"]["QCN_RPC_URL"] == env["QCN_RPC_URL"]
    # The build context is the repository root, whichever directory compose runs from.
    assert Path(rendered["services"]["gateway"]["build"]["context"]) == ROOT
    del env["QCN_RPC_URL"]
    result = subprocess.run(run, capture_output=True, text=True, env={**base, **env}, check=False, timeout=60)
    assert result.returncode != 0
    assert "QCN_RPC_URL" in result.stderr
