"""Outputs never clobber what is not a regular file, respect the umask, are checked before a
run starts, and a finished measurement is never lost (Milestone 8 items 9, 10, 11)."""

from __future__ import annotations

import os
import socket
import stat
import textwrap
import threading
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.errors import OutputError
from loadbench.result_io import (
    NAME_STEM_MAX,
    check_output,
    result_file_stem,
    write_atomic,
    write_rescued,
)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- item 9: what is not a regular file is written in place, symlinks are followed ---

def test_a_fifo_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, "through the pipe\n")
    reader.join(5)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # the old code renamed a regular file over it


def test_a_character_device_stays_a_device(tmp_path):
    device = tmp_path / "null"
    try:  # a private twin of /dev/null: never touch the real one in a test
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a device node here (needs CAP_MKNOD): {exc}")
    write_atomic(device, "discarded\n")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_symlink_keeps_pointing_at_its_replaced_target(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old\n")
    link = tmp_path / "latest.md"
    link.symlink_to(real)
    write_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "made-by-write.md")
    write_atomic(dangling, "created\n")
    assert dangling.is_symlink() and (tmp_path / "made-by-write.md").read_text() == "created\n"


def test_dash_is_stdout(capfd):
    write_atomic("-", "to stdout\n")
    assert capfd.readouterr().out == "to stdout\n"


def test_report_dash_is_stdout(repo_root):
    result = invoke("report", str(repo_root / "tests/data/result_fixed.json"), "-f", "csv",
                    "-o", "-")
    assert result.exit_code == 0 and result.stdout.startswith("name,client,")


def test_bytes_and_a_directory_target(tmp_path):
    assert write_atomic(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    with pytest.raises(OutputError, match="is a directory"):
        write_atomic(tmp_path, "x")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".loadbench-")]


# --- item 10: the umask decides a new file's mode; a replaced file keeps its mode ---

@settings(max_examples=20, derandomize=True, deadline=None)
@given(umask=st.integers(0, 0o777))
def test_new_files_follow_the_umask(tmp_path_factory, umask):
    folder = tmp_path_factory.mktemp("umask")
    previous = os.umask(umask)
    try:
        path = write_atomic(folder / "r.json", "{}\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old\n")
    path.chmod(0o640)
    write_atomic(path, "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "new\n"


# --- item 11: check before the run; rescue after it; bounded file names ---

@settings(max_examples=50, derandomize=True, deadline=None)
@given(name=st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=400))
@example(name="n" * 300)
@example(name="n" * 101)
@example(name="n" * 100)
def test_result_file_names_are_bounded_and_distinct(name):
    stem = result_file_stem(name, "2026-12-01T22:04:42Z")
    assert len(stem.encode()) <= NAME_STEM_MAX + 17
    assert stem.endswith("-20261201T220442Z")
    if len(name) <= NAME_STEM_MAX:
        assert stem == f"{name}-20261201T220442Z"
    else:
        assert stem != result_file_stem(name + "x", "2026-12-01T22:04:42Z")


def test_check_output_refuses_what_cannot_be_written(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match=r"^--out .*file: is a file; this option takes a dir"):
        check_output(a_file, "--out", directory=True)
    # under a regular file: fails for root too (permission bits would not)
    with pytest.raises(OutputError, match="is not a directory"):
        check_output(a_file / "sub" / "r.json", "--junit")
    with pytest.raises(OutputError, match="is a directory; give a file name"):
        check_output(tmp_path, "-o")
    with pytest.raises(OutputError, match="file name too long"):
        check_output(tmp_path / ("n" * 300 + ".json"), "-o")
    with pytest.raises(OutputError, match="file name too long"):
        check_output(tmp_path, "--out", directory=True, file_names=("n" * 300,))
    check_output(tmp_path / "new" / "deeper", "--out", directory=True)  # created later: fine
    check_output("-", "-o")
    assert not (tmp_path / "new").exists()  # the check itself creates nothing


def test_a_result_that_cannot_be_written_is_rescued(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    where, problem = write_rescued(blocker / "r.json", '{"measured": true}\n')
    try:
        assert where.read_text() == '{"measured": true}\n'
        assert "cannot write" in problem and str(where) in problem
    finally:
        where.unlink()


def scenario(tmp_path, name="s", url=None):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        target: {{url: "{url or f'http://127.0.0.1:{closed_port()}'}"}}
        requests: [{{path: /}}]
        duration: 300ms
        runs: [{{name: g, client: gather, concurrency: 1}}]
        """))
    return path


@pytest.mark.parametrize("option", ["--out", "--junit", "--save-baseline"])
def test_run_refuses_an_unwritable_output_before_sending_load(tmp_path, option):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    values = {"--out": [str(blocker)], "--junit": [str(blocker / "t.xml")],
              "--save-baseline": ["n" * 300]}
    started = time.monotonic()
    result = invoke("run", str(scenario(tmp_path)), "--no-progress", option, *values[option])
    assert result.exit_code == 2, result.output
    assert time.monotonic() - started < 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"loadbench: error: {option} ")


def test_bench_sweep_claims_check_their_outputs_first(tmp_path, repo_root):
    url = f"http://127.0.0.1:{closed_port()}/"  # reached, it would exit 0 or 3, not 2
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bench = invoke("bench", url, "-d", "300ms", "--out", str(blocker / "r.json"))
    assert bench.exit_code == 2 and "--out" in bench.output
    bench_dir = invoke("bench", url, "-d", "300ms", "--out", str(tmp_path))
    assert bench_dir.exit_code == 2 and "is a directory" in bench_dir.output
    sweep = invoke("sweep", url, "--out", str(blocker), "--step-duration", "200ms")
    assert sweep.exit_code == 2 and "--out" in sweep.output
    sweep_o = invoke("sweep", url, "-o", str(blocker / "s.md"), "--step-duration", "200ms")
    assert sweep_o.exit_code == 2 and "--output" in sweep_o.output
    claims = invoke("claims", "-o", str(blocker / "c.md"), "--only", "gather",
                    "--scenarios", str(repo_root / "scenarios"))
    assert claims.exit_code == 2 and "--output" in claims.output, claims.output


def test_a_long_scenario_name_saves_its_result(tmp_path, target_url):
    name = "n" * 300
    result = invoke("run", str(scenario(tmp_path, name=name, url=target_url)),
                    "--no-progress", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    saved = list((tmp_path / "out").glob("*.json"))
    assert len(saved) == 1 and saved[0].name.startswith("n" * 91 + "-")


def test_a_write_failing_after_the_run_rescues_the_result(tmp_path, target_url, monkeypatch):
    import loadbench.result_io as result_module

    original = result_module.write_atomic

    def failing(path, data):
        if str(path).endswith(".json"):
            raise OutputError(f"cannot write {path}: No space left on device")
        return original(path, data)

    monkeypatch.setattr(result_module, "write_atomic", failing)
    result = invoke("run", str(scenario(tmp_path, url=target_url)), "--no-progress",
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "No space left on device; saved to " in result.output
    rescued = result.output.split("saved to ")[1].split(" instead")[0]
    try:
        assert '"runs"' in open(rescued).read()
    finally:
        os.unlink(rescued)


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write in, root included: chmod for users, `chattr +i` for
    root (permission bits do not stop root)."""
    import shutil
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i here: cannot make a read-only folder")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_directory_is_refused_before_the_run(tmp_path, read_only_dir):
    result = invoke("run", str(scenario(tmp_path)), "--no-progress", "--out", str(read_only_dir))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"loadbench: error: --out {read_only_dir}: cannot write in")
    nested = invoke("bench", f"http://127.0.0.1:{closed_port()}/", "-d", "300ms", "--out",
                    str(read_only_dir / "sub" / "r.json"))
    assert nested.exit_code == 2 and "cannot write in" in nested.output


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_root_replacing_a_users_file_keeps_its_owner(tmp_path):
    path = tmp_path / "mine.md"
    path.write_text("old\n")
    os.chown(path, 4321, 4321)
    write_atomic(path, "new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)
