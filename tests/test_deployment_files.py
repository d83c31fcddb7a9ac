"""docker-compose.yml and the Dockerfile, checked against the settings they wire together.

No Docker engine runs here, so these tests read the files: service names, ports, variables, image
versions. Compose's variable interpolation (`${VAR:-default}`, `${VAR:?error}`) is resolved by a
small implementation below, with an environment each test chooses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tracechain.chain.node import ANVIL_DEV_KEY, AnvilNode
from tracechain.config import ChainMode, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PACKAGE_JSON = ROOT / "package.json"

PREFIX = Settings.model_config["env_prefix"]  # "TRACECHAIN_"
SECRETS = ("TRACECHAIN_ADMIN_TOKEN", "TRACECHAIN_MASTER_SECRET")
# Stand-ins for the operator's secrets: long and random-looking, as Settings.require_secrets wants.
OPERATOR_ENV = {name: f"{name.lower()}-0123456789abcdef0123456789abcdef" for name in SECRETS}


# --- reading the files ---------------------------------------------------------------------------


class MissingVariable(Exception):
    """Compose refuses to start: a `${VAR:?message}` variable is unset or empty."""


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """`value` as Compose resolves it in `env`: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def resolve(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and unset:
            return arg
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(resolve, value)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def raw_environment(name: str) -> dict[str, str]:
    """A service's environment as written (mapping or list form), before interpolation."""
    environment = service(name).get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: str(value) for key, value in environment.items()}


def environment(name: str, env: Mapping[str, str] = OPERATOR_ENV) -> dict[str, str]:
    return {key: interpolate(value, env) for key, value in raw_environment(name).items()}


def argv(name: str) -> list[str]:
    """The command line a service runs: its entrypoint followed by its command."""
    spec = service(name)
    words: list[str] = []
    for key in ("entrypoint", "command"):
        part = spec.get(key, [])
        words += shlex.split(part) if isinstance(part, str) else [str(word) for word in part]
    return words


def option(words: list[str], flag: str) -> str:
    assert flag in words, f"{flag} missing from {words}"
    return words[words.index(flag) + 1]


def published_ports(name: str) -> dict[int, int]:
    """Container port -> host port for each port a service publishes."""
    ports: dict[int, int] = {}
    for entry in service(name).get("ports", []):
        if isinstance(entry, dict):
            ports[int(entry["target"])] = int(entry["published"])
        else:
            *_host_ip, host, container = str(entry).split(":")
            ports[int(container.split("/")[0])] = int(host)
    return ports


def volume_targets(name: str) -> list[str]:
    targets = []
    for entry in service(name).get("volumes", []):
        targets.append(entry["target"] if isinstance(entry, dict) else entry.split(":")[1])
    return targets


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that is run: those after the last FROM."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def dockerfile_cmd() -> list[str]:
    commands = [arguments for keyword, arguments in final_stage() if keyword == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    cmd = json.loads(commands[-1])  # the exec form: a JSON array, no shell in between
    assert isinstance(cmd, list)
    return cmd


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


# --- services ------------------------------------------------------------------------------------


def test_compose_has_exactly_the_api_its_worker_anvil_and_postgres_services() -> None:
    assert set(compose()["services"]) == {"api", "worker", "anvil", "postgres"}


def test_the_worker_runs_tracechain_work_from_the_apis_image_beside_an_api_without_workers() -> None:
    assert service("worker")["build"] == service("api")["build"]
    assert argv("worker") == ["tracechain", "work"]
    assert environment("api")["TRACECHAIN_RUN_WORKERS"] == "false"  # or both would send
    assert environment("worker") == {
        name: value for name, value in environment("api").items() if name != "TRACECHAIN_RUN_WORKERS"
    }
    # The worker finds the contracts by the deployments the API records in the data folder.
    assert "api-data:/data" in service("worker")["volumes"] and "api-data:/data" in service("api")["volumes"]
    assert service("worker")["depends_on"] == {"api": {"condition": "service_started"}}


def test_api_is_built_from_the_dockerfile_at_the_top_level() -> None:
    build = service("api")["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert (ROOT / context).resolve() == ROOT
    assert isinstance(build, str) or build.get("dockerfile", "Dockerfile") == DOCKERFILE.name


def test_api_waits_for_a_healthy_postgres_and_a_healthy_anvil() -> None:
    depends_on = service("api")["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["anvil"]["condition"] == "service_healthy"
    # service_healthy needs a healthcheck on the other side, or the API would never start.
    assert service("postgres")["healthcheck"]["test"]
    assert service("anvil")["healthcheck"]["test"]


def test_api_healthcheck_asks_the_readiness_route_the_app_serves() -> None:
    from tracechain.api.app import create_app
    from tracechain.config import Settings

    (command,) = [part for part in service("api")["healthcheck"]["test"] if "urlopen" in part]
    url = command.split("urlopen('", 1)[1].split("'", 1)[0]
    assert url == "http://127.0.0.1:8000/ready"  # the port the Dockerfile serves on (tested below)
    assert "/ready" in create_app(Settings()).openapi()["paths"]


def test_postgres_healthcheck_runs_pg_isready() -> None:
    test = service("postgres")["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(test[1:]).split()


# --- the API's settings --------------------------------------------------------------------------


def test_api_sets_only_tracechain_variables_that_are_settings_fields() -> None:
    variables = raw_environment("api")
    assert variables
    for variable in variables:
        assert variable.startswith(PREFIX), f"{variable} is not a tracechain setting"
        field = variable.removeprefix(PREFIX).lower()
        assert field in Settings.model_fields, f"{variable}: Settings has no field {field!r}"


def test_api_environment_loads_into_settings_as_an_rpc_chain_on_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):  # nothing from the developer's own settings
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in environment("api").items():
        monkeypatch.setenv(name, value)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.chain is ChainMode.RPC
    assert settings.rpc_url == "http://anvil:8545"
    assert settings.effective_database_url.startswith("postgresql://")
    assert settings.data_dir == Path("/data")
    settings.require_secrets()  # the secrets from the environment are accepted as real ones


def test_rpc_url_points_at_the_anvil_service_on_the_port_anvil_listens_on() -> None:
    url = urlsplit(environment("api")["TRACECHAIN_RPC_URL"])
    assert url.scheme == "http"
    assert url.hostname == "anvil"
    assert url.hostname in compose()["services"]
    assert url.port == int(option(argv("anvil"), "--port"))


def test_anvil_listens_on_all_interfaces_of_its_container() -> None:
    # On anvil's default 127.0.0.1 no other container (and no published port) could reach it.
    assert option(argv("anvil"), "--host") == "0.0.0.0"


@pytest.mark.parametrize(
    "env",
    [{}, {"POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "s3cret"}],
    ids=["defaults", "overridden"],
)
def test_database_url_points_at_the_postgres_service_its_database_and_user(env: dict[str, str]) -> None:
    env = {**OPERATOR_ENV, **env}
    url = urlsplit(environment("api", env)["TRACECHAIN_DATABASE_URL"])
    postgres = environment("postgres", env)

    assert url.scheme == "postgresql"
    assert url.hostname == "postgres"
    assert url.hostname in compose()["services"]
    assert url.port == 5432  # PostgreSQL's port inside the compose network
    assert url.path == "/" + postgres["POSTGRES_DB"]
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    if env.get("POSTGRES_USER"):
        assert url.username == env["POSTGRES_USER"]  # an override reaches both services


def test_postgres_database_is_named_tracechain() -> None:
    assert raw_environment("postgres")["POSTGRES_DB"] == "tracechain"


def test_data_dir_is_the_volume_the_dockerfile_declares_and_compose_mounts() -> None:
    data_dir = environment("api")["TRACECHAIN_DATA_DIR"]
    assert data_dir == dockerfile_env()["TRACECHAIN_DATA_DIR"]
    declared = [
        path
        for keyword, arguments in final_stage()
        if keyword == "VOLUME"
        for path in (json.loads(arguments) if arguments.startswith("[") else arguments.split())
    ]
    assert data_dir in declared
    assert data_dir in volume_targets("api")


# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", SECRETS)
def test_secret_comes_from_the_environment_in_the_required_form(variable: str) -> None:
    value = raw_environment("api")[variable]
    assert re.fullmatch(r"\$\{" + variable + r":\?[^}]+\}", value), (
        f"{variable} must be ${{{variable}:?message}}, not {value!r}"
    )


@pytest.mark.parametrize("variable", SECRETS)
def test_compose_refuses_to_start_without_the_secret(variable: str) -> None:
    env = {name: value for name, value in OPERATOR_ENV.items() if name != variable}
    with pytest.raises(MissingVariable, match=variable):
        environment("api", env)
    with pytest.raises(MissingVariable, match=variable):
        environment("api", {**env, variable: ""})


@pytest.mark.parametrize("variable", SECRETS)
def test_secret_reaches_the_api_unchanged(variable: str) -> None:
    assert environment("api")[variable] == OPERATOR_ENV[variable]


def test_relayer_key_is_the_public_anvil_dev_key_only_because_the_chain_is_this_files_anvil() -> None:
    api = environment("api")
    assert api["TRACECHAIN_RELAYER_KEY"] == ANVIL_DEV_KEY
    assert urlsplit(api["TRACECHAIN_RPC_URL"]).hostname == "anvil"
    assert "foundry-rs/foundry" in service("anvil")["image"]


# --- ports ---------------------------------------------------------------------------------------


def test_api_publishes_port_8000_which_the_dockerfile_serves_and_exposes() -> None:
    cmd = dockerfile_cmd()
    served = int(option(cmd, "--port"))
    exposed = [int(port.split("/")[0]) for k, args in final_stage() if k == "EXPOSE" for port in args.split()]
    assert served == 8000
    assert exposed == [served]
    assert published_ports("api") == {served: 8000}


def test_anvil_publishes_port_8545_which_it_listens_on() -> None:
    listening = int(option(argv("anvil"), "--port"))
    assert listening == 8545
    assert published_ports("anvil") == {listening: 8545}


def test_postgres_publishes_no_port() -> None:
    assert published_ports("postgres") == {}


# --- anvil ---------------------------------------------------------------------------------------


def test_anvil_image_tag_is_the_npm_anvil_version_from_package_json() -> None:
    version = json.loads(PACKAGE_JSON.read_text())["dependencies"]["@foundry-rs/anvil"]
    assert service("anvil")["image"] == f"ghcr.io/foundry-rs/foundry:v{version}"


def test_anvil_runs_anvil_with_the_managed_nodes_chain_id_and_hardfork() -> None:
    words = argv("anvil")
    managed = AnvilNode(Path("anvil")).command()
    assert words[0] == "anvil"
    assert int(option(words, "--chain-id")) == Settings.model_fields["chain_id"].default
    assert option(words, "--hardfork") == option(managed, "--hardfork")


def test_anvil_keeps_its_state_in_a_named_volume() -> None:
    state_dir = str(Path(option(argv("anvil"), "--state")).parent)
    assert state_dir in volume_targets("anvil")
    named = [entry.split(":")[0] for entry in service("anvil")["volumes"] if isinstance(entry, str)]
    assert set(named) <= set(compose().get("volumes") or {})


# --- the Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_cmd_runs_tracechain_serve_on_all_interfaces() -> None:
    cmd = dockerfile_cmd()
    assert cmd[:2] == ["tracechain", "serve"]
    assert option(cmd, "--host") == "0.0.0.0"


def test_dockerfile_is_based_on_python_3_11_slim() -> None:
    assert final_stage()[0][1].split()[0] == "python:3.11-slim"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [arguments.split(":")[0] for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the image would run as root"
    assert users[-1] not in ("root", "0")


def test_dockerfile_installs_the_package_without_editable_mode_or_extras() -> None:
    installs = [args for k, args in dockerfile_instructions() if k == "RUN" and "pip install" in args]
    assert installs
    for install in installs:
        words = shlex.split(install.split("pip install", 1)[1])
        assert "-e" not in words and "--editable" not in words
        assert "." in words  # the package itself, from pyproject.toml
        assert not any("[" in word for word in words), f"extras installed: {install}"
