"""Running `tinyface ...` in-process in a test, and checking that an error is a one-line user error."""

from tinyface.cli import main


def run(argv, capsys):
    """(exit code, stdout, stderr) of `tinyface *argv`."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fails(argv, capsys, message):
    """`tinyface *argv` exits 2 with `tinyface: error: ...` naming `message`, and no traceback."""
    code, out, err = run(argv, capsys)
    assert code == 2, out
    assert err.startswith("tinyface: error:") and message in err and "Traceback" not in err, err
    return err
