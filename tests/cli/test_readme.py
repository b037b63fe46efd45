"""The README's commands are the ones CI runs: they stay true together."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bash_blocks(markdown: str) -> list[str]:
    blocks, inside = [], False
    for line in markdown.splitlines():
        if line.strip() == "```bash":
            inside, block = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(block))
        elif inside:
            block.append(line)
    return blocks


def test_ci_runs_the_readme_test_command():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    test_commands = [b for b in blocks if "pytest" in b]
    assert len(test_commands) == 1, "the README should have exactly one test command"
    assert test_commands[0].strip() in (ROOT / ".ci" / "run").read_text()


def test_readme_has_an_install_and_run_command():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    assert any(b.startswith("pip install .") and "tinyface train" in b for b in blocks)
