"""The README's commands work as written: after its set-up command, every `edgedl` line it shows parses."""
import re
import shlex

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    """Every command in the README's ```sh blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_the_set_up_is_two_make_commands_and_says_how_to_reach_the_tools():
    setup = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = [ln for block in re.findall(r"```sh\n(.*?)```", setup, flags=re.S) for ln in block.splitlines()]
    assert [c.split("#")[0].strip() for c in commands if c.strip()] == ["make demo", "make test"]
    assert ". .venv/bin/activate" in setup  # without it, every later command is "command not found"


@pytest.mark.parametrize("line", [ln for ln in shell_lines() if ln.startswith("edgedl ")])
def test_every_edgedl_command_in_the_readme_parses(line):
    from edgedl.cli import build_parser

    argv = shlex.split(line.split(" | ")[0].split(" && ")[0])[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"the README's '{line}' does not parse (exit {exc.code})")
    assert callable(args.func)
