"""Configuration: discovery, `--config`, `--show-config`, excludes and per-file ignores, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"


def stack(folder: Path, text: str = PLAIN, name: str = "compose.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / name
    f.write_text(text)
    return f


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    got = capsys.readouterr()
    return code, got.out, got.err


def test_discovery_walks_up_and_the_nearest_file_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.e2i-fix]\nselect = ["logging"]\n')
    stack(tmp_path / "a" / "deep")
    stack(tmp_path / "b")
    (tmp_path / "b" / ".e2i-fix.toml").write_text('select = ["tmpfs-size"]\n')
    code, out, _ = run(capsys, "--check", str(tmp_path))
    assert code == 1
    assert "[logging]" in out and "a/deep/compose.yaml" in out
    assert "b/compose.yaml" not in out  # tmpfs-size has nothing to say there
    # A pyproject.toml without [tool.e2i-fix] is passed over on the way up.
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert "[logging]" in run(capsys, "--check", str(tmp_path / "a"))[1]


def test_config_names_one_file_for_every_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path / "s")
    (tmp_path / "s" / ".e2i-fix.toml").write_text('select = ["tmpfs-size"]\n')
    cfg = tmp_path / "fleet.toml"
    cfg.write_text('select = ["logging"]\n')
    code, out, _ = run(capsys, "--check", "--config", str(cfg), str(tmp_path))
    assert code == 1 and "[logging]" in out
    py = tmp_path / "pyproject.toml"
    py.write_text('[tool.e2i-fix]\nignore = ["all"]\n')
    assert run(capsys, "--check", "--config", str(py), str(tmp_path))[0] == 0


@pytest.mark.parametrize(("content", "name", "message"), [
    (None, "missing.toml", "--config {path}: no such file"),
    ("select = [", "bad.toml", "cannot read config: "),
    ('[project]\nname = "x"\n', "pyproject.toml", "{path}: no [tool.e2i-fix] table"),
])
def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, name: str,
                              message: str) -> None:
    stack(tmp_path)
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "--config", str(path), str(tmp_path))
    assert code == 2
    assert err.startswith("e2i-fix: " + message.format(path=path.resolve() if content else path))
    assert err.count("\n") == 1


@pytest.mark.parametrize(("text", "message"), [
    ('colour = "blue"\n', "unknown key 'colour'"),
    ('exclude = "legacy"\n', "exclude must be a list of glob patterns"),
    ('per-file-ignores = ["x"]\n', "per-file-ignores must be a table"),
    ('[per-file-ignores]\n"*.yml" = ["nope"]\n', "unknown pass id nope"),
    ('[logging]\nsize = 1\n', "unknown option size for logging"),
])
def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                  message: str) -> None:
    stack(tmp_path)
    (tmp_path / ".e2i-fix.toml").write_text(text)
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2 and err.splitlines() == [f"{tmp_path}: {tmp_path / '.e2i-fix.toml'}: " + err.split(": ", 2)[2].splitlines()[0], "1 error"]
    assert message in err


def test_config_and_no_config_exclude_one_another(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.toml").write_text("")
    assert run(capsys, "--config", str(tmp_path / "c.toml"), "--no-config", str(tmp_path))[0] == 2


def test_show_config_says_where_each_value_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    cfg = tmp_path / ".e2i-fix.toml"
    cfg.write_text('ignore = ["tmpfs-size"]\nexclude = ["legacy/*"]\n[logging]\nmax-size = "20m"\n')
    code, out, _ = run(capsys, "--show-config", "--unsafe-fixes", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert f"# file: {cfg.resolve()}" in lines
    assert f'ignore = ["tmpfs-size"]  # {cfg.resolve()}' in lines
    assert "unsafe-fixes = true  # --unsafe-fixes" in lines
    assert 'select = ["all"]  # default' in lines
    assert f'max-size = "20m"  # {cfg.resolve()}' in lines
    assert "# max-file: not set (the pass's built-in choice)  # default" in lines  # the stack's own, else 3
    assert "min-services = 2  # default" in lines
    assert "[tmpfs-size]  # not selected" in lines
    # What it prints is TOML that reads back as the configuration.
    data = tomllib.loads(out)
    assert data["ignore"] == ["tmpfs-size"] and data["exclude"] == ["legacy/*"]
    assert data["logging"]["max-size"] == "20m"
    code, out, _ = run(capsys, "--show-config", "--ignore", "logging", str(tmp_path))
    assert f'ignore = ["logging", "tmpfs-size"]  # --ignore and {cfg.resolve()}' in out.splitlines()
    code, out, _ = run(capsys, "--show-config", "--no-config", str(tmp_path))
    assert "# file: none found" in out and "ignore = []  # default" in out


def test_exclude_and_per_file_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path / "legacy")
    stack(tmp_path / "legacy", "services: [\n", name="docker-compose.yml")  # never read
    stack(tmp_path / "app")
    stack(tmp_path / "app", "services:\n  extra:\n    image: redis:7\n", name="compose.prod.yaml")
    (tmp_path / ".e2i-fix.toml").write_text(
        'select = ["logging"]\nexclude = ["legacy/*"]\n'
        '[per-file-ignores]\n"compose.prod.yaml" = ["logging"]\n')
    code, out, err = run(capsys, "--check", str(tmp_path))
    assert code == 1, err
    assert "legacy" not in out + err
    assert "app/compose.yaml" in out and "compose.prod.yaml" not in out
    # The file named on the command line is still excluded (pre-commit names every file).
    assert run(capsys, "--check", str(tmp_path / "legacy" / "compose.yaml"))[0] == 0
