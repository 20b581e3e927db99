"""TLS, mTLS and HTTP/2 against real servers (tests/tlsservers.py), on both engines.

Certificates are made per test by trustme and written as the PEM files a user passes to
`--cacert/--cert/--key` or the scenario's `tls:` keys; the servers are the standard
library's HTTPS server (requiring a client certificate where the test says so) and
hypercorn offering h2 by ALPN. Every server is stopped by its `with` block.
"""

from __future__ import annotations

import json
import ssl
import textwrap

import pytest
from tlsservers import H2Server, HttpsServer, Pki
from typer.testing import CliRunner

from loadbench.cli import app

ENGINES = ["fast", "httpx"]
CERT_REQUIRED = "the server requires a client certificate"

pytestmark = pytest.mark.timeout(60)


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path / "pki")


def bench_json(*args):
    result = invoke("bench", *args, "--json")
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def one_line_error(result) -> str:
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("loadbench: error: "), result.stderr
    assert "Traceback" not in result.output
    return line


# ------------------------------------------------------------ server verification


@pytest.mark.parametrize("engine", ENGINES)
def test_cacert_verifies_a_private_ca_and_without_it_the_handshake_fails(engine, pki):
    with HttpsServer(pki.server_context()) as server:
        trusted, run = bench_json(server.url(), "-n", 20, "-c", 2, "--engine", engine,
                                  "--cacert", pki.cacert)
        untrusted, _ = bench_json(server.url(), "-n", 5, "-c", 1, "--engine", engine)
        insecure, skipped = bench_json(server.url(), "-n", 5, "-c", 1, "--engine", engine,
                                       "--insecure")
    assert trusted.exit_code == 0, trusted.output
    assert run["status_codes"] == {"200": 20} and run["http_versions"] == {"HTTP/1.1": 20}
    assert untrusted.exit_code == 3
    assert "TLS certificate verification failed" in one_line_error(untrusted)
    assert insecure.exit_code == 0 and skipped["status_codes"] == {"200": 5}


# ------------------------------------------------------------ client certificates (mTLS)


@pytest.mark.parametrize("engine", ENGINES)
def test_server_requiring_a_client_certificate(engine, pki):
    """Without a certificate: every attempt refused, one line naming why, exit 3 (TLS 1.3
    refuses after the client's handshake, at the first read: still no connection). With
    --cert/--key: 200s, and the server saw the certificate on every request."""
    with HttpsServer(pki.server_context(require_client_cert=True)) as server:
        refused, run = bench_json(server.url(), "-n", 6, "-c", 2, "--engine", engine,
                                  "--cacert", pki.cacert)
        assert server.refused and server.clients == {}
        accepted, ok = bench_json(server.url(), "-n", 20, "-c", 2, "--engine", engine,
                                  "--cacert", pki.cacert, "--cert", pki.client_cert,
                                  "--key", pki.client_key)
        assert server.clients == {"certificate": 20}
    assert refused.exit_code == 3, refused.output
    line = one_line_error(refused)
    assert f"127.0.0.1:{server.port}: TLS handshake failed: {CERT_REQUIRED}" in line
    assert run["verdict"] == "invalid: target unreachable"
    assert run["errors"]["connect"] == run["requests"] == 6
    assert accepted.exit_code == 0, accepted.output
    assert ok["status_codes"] == {"200": 20} and sum(ok["errors"].values()) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_asyncio_server_requiring_a_client_certificate(engine, pki):
    """hypercorn (like uvicorn) drops a connection without a certificate with no TLS alert:
    a fresh TLS connection closed unanswered twice is no connection, and the line says
    what to check. With the certificate: 200s over HTTP/2 (httpx) or HTTP/1.1 (fast)."""
    with H2Server(pki, require_client_cert=True) as server:
        refused, _ = bench_json(server.url(), "-n", 4, "-c", 2, "--engine", engine,
                                "--cacert", pki.cacert, "--timeout", "2s")
        accepted, ok = bench_json(server.url(), "-n", 10, "-c", 2, "--engine", engine,
                                  "--cacert", pki.cacert, "--cert", pki.client_cert,
                                  "--key", pki.client_key)
        assert server.requests == {"1.1": 10}
    assert refused.exit_code == 3, refused.output
    assert ("TLS connection closed by the server before any response (does it require a "
            "client certificate? --cert/--key)") in one_line_error(refused)
    assert accepted.exit_code == 0, accepted.output
    assert ok["status_codes"] == {"200": 10}


def mtls_scenario(folder, url, engine, with_cert=True, **extra) -> str:
    """A scenario with the `tls:` keys, paths relative to the scenario file; two request
    names, so the run goes through the flow runner (the other connection code)."""
    tls = "{cacert: pki/ca.pem, cert: pki/client.pem, key: pki/client.key}" if with_cert \
        else "{cacert: pki/ca.pem}"
    lines = "\n".join(f"{key}: {value}" for key, value in extra.items())
    path = folder / "mtls.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: mtls
        target: {{url: "{url}"}}
        engine: {engine}
        tls: {tls}
        requests:
          - {{name: one, path: /one}}
          - {{name: two, path: /two}}
        iterations: 20
        """) + lines + "\n")
    return str(path)


@pytest.mark.parametrize("engine", ENGINES)
def test_scenario_tls_keys_in_flows_and_child_processes(engine, pki, tmp_path):
    """The paths travel in the LoadPlan to each child process, which builds its own
    context: a context cannot be pickled, and a shard without the certificate would be
    refused."""
    with HttpsServer(pki.server_context(require_client_cert=True)) as server:
        runs = ("[{name: flows, client: gather, concurrency: 2}, "
                "{name: procs, client: multiprocess, processes: 2, concurrency: 2}]")
        ok = invoke("run", mtls_scenario(tmp_path, server.url(""), engine, runs=runs),
                    "--no-progress", "--out", tmp_path / "out")
        assert server.clients == {"certificate": 40}
        refused = invoke("run", mtls_scenario(tmp_path, server.url(""), engine, False,
                                              runs="[{name: flows, client: gather}]"),
                         "--no-progress", "--out", tmp_path / "refused")
    assert ok.exit_code == 0, ok.output
    saved = json.loads(next((tmp_path / "out").glob("mtls-*.json")).read_text())
    for run in saved["runs"]:
        assert run["status_codes"] == {"200": 20} and run["http_versions"] == {"HTTP/1.1": 20}
    assert refused.exit_code == 3, refused.output
    assert CERT_REQUIRED in one_line_error(refused)


def test_cli_options_override_the_scenario_for_run(pki, tmp_path):
    with HttpsServer(pki.server_context(require_client_cert=True)) as server:
        path = mtls_scenario(tmp_path, server.url(""), "fast", False,
                             runs="[{name: g, client: gather}]")
        result = invoke("run", path, "--no-progress", "--out", tmp_path / "out",
                        "--cert", pki.client_cert, "--key", pki.client_key)
        assert server.clients == {"certificate": 20}
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------ bad TLS input: exit 2


def test_bad_tls_files_are_one_line_errors_before_anything_runs(pki, tmp_path):
    other = Pki(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    from cryptography.hazmat.primitives import serialization

    locked = tmp_path / "locked.key"
    key = serialization.load_pem_private_key(pki.client.private_key_pem.bytes(), None)
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    url = "https://127.0.0.1:9/"  # never contacted: the files are checked first
    cases = [
        (["--cacert", tmp_path / "missing.pem"], "--cacert", "no such file"),
        (["--cacert", tmp_path], "--cacert", "is not a file"),
        (["--cacert", garbage], "--cacert", "not a PEM CA certificate"),
        (["--key", pki.client_key], "--key", "needs --cert"),
        (["--cert", pki.client_cert], "--cert", "cannot load the client certificate"),
        (["--cert", pki.client_cert, "--key", other.client_key], "--key",
         "KEY_VALUES_MISMATCH"),
        (["--cert", garbage, "--key", pki.client_key], "--cert", "cannot load"),
        (["--cert", pki.client_cert, "--key", locked], "--key", "the private key is encrypted"),
    ]
    for args, option, words in cases:
        result = invoke("bench", url, "-n", 1, *args)
        assert result.exit_code == 2, (args, result.output)
        line = one_line_error(result)
        assert f"error: {option} " in line and words in line, line


def test_bad_scenario_tls_keys_name_the_file_line(tmp_path, pki):
    path = tmp_path / "s.yaml"
    body = textwrap.dedent("""\
        name: s
        target: {url: "https://127.0.0.1:9"}
        requests: [{path: /}]
        runs: [{name: g}]
        tls:
          cacert: pki/ca.pem
          cert: pki/nope.pem
        """)
    path.write_text(body)
    result = invoke("validate", path)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert f"{path}:7: tls.cert: {tmp_path / 'pki/nope.pem'}: no such file" in line
    path.write_text(body.replace("cert: pki/nope.pem", "key: pki/client.key"))
    result = invoke("validate", path)
    assert result.exit_code == 2 and "'key' needs 'cert'" in one_line_error(result)
    path.write_text(body.replace("cert: pki/nope.pem", "insecure: maybe"))
    assert invoke("validate", path).exit_code == 2
    path.write_text(body.replace("cert: pki/nope.pem", "cert: pki/client.pem\n  "
                                 "key: pki/client.key"))
    assert invoke("validate", path).exit_code == 0


# ------------------------------------------------------------ HTTP/2 and the version used


@pytest.mark.parametrize("http2", [True, False])
def test_httpx_negotiates_h2_with_hypercorn_and_the_result_says_so(http2, pki, tmp_path):
    path = tmp_path / "h2.yaml"
    with H2Server(pki) as server:
        path.write_text(textwrap.dedent(f"""\
            name: h2
            target: {{url: "{server.url('')}"}}
            engine: httpx
            http2: {str(http2).lower()}
            tls: {{cacert: pki/ca.pem}}
            requests: [{{path: /ok}}]
            iterations: 20
            runs: [{{name: gather, client: gather, concurrency: 2}},
                   {{name: fast, client: gather, engine: fast, http2: false}}]
            """))
        result = invoke("run", path, "--no-progress", "--out", tmp_path / "out")
        assert server.requests == {"2": 20, "1.1": 20} if http2 else {"1.1": 40}
    assert result.exit_code == 0, result.output
    saved = json.loads(next((tmp_path / "out").glob("h2-*.json")).read_text())
    versions = {run["name"]: run["http_versions"] for run in saved["runs"]}
    used = "HTTP/2" if http2 else "HTTP/1.1"
    assert versions == {"gather": {used: 20}, "fast": {"HTTP/1.1": 20}}
    markdown = next((tmp_path / "out").glob("h2-*.md")).read_text()
    expected = "gather HTTP/2; fast HTTP/1.1" if http2 else "HTTP/1.1"
    assert f"Protocol (of the responses): {expected}\n" in markdown
    assert f"protocol {expected}" in " ".join(result.output.split())


def test_fast_engine_records_the_version_a_server_answers_with(tmp_path):
    """An HTTP/1.0 server (the stdlib's default) closes after each response: the fast
    engine counts what came, not what it asked for."""
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "f.txt").write_text("hello")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        result, run = bench_json(f"http://127.0.0.1:{httpd.server_address[1]}/f.txt",
                                 "-n", 10, "-c", 2)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert result.exit_code == 0, result.output
    assert run["http_versions"] == {"HTTP/1.0": 10}


def test_versions_merge_and_render_mixed():
    from loadbench.report.format import protocols
    from loadbench.result import RunResult

    base = json.loads((__import__("pathlib").Path(__file__).parent
                       / "data/result_fixed.json").read_text())["runs"][0]
    one = RunResult.model_validate({**base, "name": "a", "http_versions": {"HTTP/2": 3}})
    mixed = RunResult.model_validate({**base, "name": "b",
                                      "http_versions": {"HTTP/1.1": 1200, "HTTP/2": 8}})
    old = RunResult.model_validate({**base, "name": "c", "http_versions": {}})
    assert protocols([one, old]) == "HTTP/2"
    assert protocols([one, mixed]) == "a HTTP/2; b HTTP/1.1 ×1,200, HTTP/2 ×8"
    assert protocols([old]) is None


def test_connect_failure_names_the_tls_alert():
    from loadbench.engines import connect_failure, tls_refusal

    error = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert")
    error.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    wrapped = OSError("read failed")
    wrapped.__context__ = error
    assert tls_refusal(wrapped) is error and tls_refusal(OSError("x")) is None
    assert connect_failure(wrapped).startswith(f"TLS handshake failed: {CERT_REQUIRED}")


def test_shards_import_no_pydantic_for_tls():
    """The plan carries TlsFiles to child processes and Dask workers: importing the plan and
    the engines must not pull in the scenario models (pydantic costs start-up per child)."""
    import subprocess
    import sys

    code = ("import sys, loadbench.load, loadbench.shard, loadbench.engines.fast, "
            "loadbench.engines.httpx_engine; print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
