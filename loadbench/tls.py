"""TLS settings of a run: which CA to trust and which client certificate to present.

They travel as file paths (`TlsFiles` in the LoadPlan: picklable, so child processes and
Dask workers get them) and become an `ssl.SSLContext` once per shard, in `client_context`,
the one place both engines build their context. The files are read once at load time
(`tls_problem`), so a missing or mismatched file is a one-line error before anything runs.
No pydantic here: child processes and Dask workers import this module with every plan (the
scenario's `tls:` model is `tls_spec.TlsSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from loadbench.tls_spec import TlsSpec


@dataclass(frozen=True)
class TlsFiles:
    """Absolute paths of the PEM files a shard loads into its SSL context."""

    cacert: str | None = None
    cert: str | None = None
    key: str | None = None


def tls_files(spec: TlsSpec | None, base_dir: str) -> TlsFiles | None:
    """The spec's paths resolved against the scenario's folder (None: nothing to load)."""
    if spec is None or not (spec.cacert or spec.cert):
        return None

    def resolve(path: str | None) -> str | None:
        return None if path is None else str((Path(base_dir) / Path(path).expanduser()).resolve())

    return TlsFiles(resolve(spec.cacert), resolve(spec.cert), resolve(spec.key))


def client_context(verify: bool, files: TlsFiles | None = None,
                   alpn: list[str] | None = None) -> ssl.SSLContext:
    """A client SSL context: the system CAs (or `files.cacert`), the client certificate if
    any, and the ALPN protocols the engine speaks."""
    import ssl

    context = ssl.create_default_context(cafile=files.cacert if files else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if files is not None and files.cert is not None:
        context.load_cert_chain(files.cert, files.key)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def tls_problem(files: TlsFiles | None) -> tuple[str, str] | None:
    """(field, what is wrong) for the first file that cannot be used, or None: each file
    exists and loads, and the key belongs to the certificate."""
    if files is None:
        return None
    import ssl

    for field in ("cacert", "cert", "key"):
        path = getattr(files, field)
        if path is not None and not Path(path).is_file():
            what = "is not a file" if Path(path).exists() else "no such file"
            return field, f"{path}: {what}"
    # bare contexts: the system CA store (~60 ms to load) has nothing to do with these files
    if files.cacert is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(files.cacert)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return "cacert", f"{files.cacert}: not a PEM CA certificate ({_why(exc)})"
    if files.cert is None:
        return None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(files.cert, files.key,
                                                                password=_no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        field = "key" if files.key is not None and "KEY" in _why(exc).upper() else "cert"
        hint = ("a certificate and its unencrypted private key in PEM" if files.key is None
                else "a PEM certificate and the unencrypted PEM private key that belongs to it")
        return field, f"{getattr(files, field)}: cannot load the client certificate " \
                      f"({_why(exc)}); give {hint}"
    return None


def _no_password() -> str:
    raise ValueError("the private key is encrypted")


def _why(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    return str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)


def cli_tls(cacert: Path | None, cert: Path | None, key: Path | None,
            insecure: bool) -> dict:
    """`--cacert/--cert/--key/--insecure` as a scenario `tls:` mapping with absolute paths,
    checked here so that an error names the option, not a scenario key."""
    from loadbench.errors import BadInput

    given = {"cacert": cacert, "cert": cert, "key": key}
    if key is not None and cert is None:
        raise BadInput(f"--key {key}: needs --cert (the client certificate it belongs to)")
    paths = {name: str(Path(path).expanduser().resolve()) for name, path in given.items()
             if path is not None}
    problem = tls_problem(TlsFiles(**paths) if paths else None)
    if problem:
        field, what = problem
        raise BadInput(f"--{field} {given[field]}: {what.partition(': ')[2]}")
    return {**paths, **({"insecure": True} if insecure else {})}


def tls_overrides(cacert: Path | None, cert: Path | None, key: Path | None,
                  insecure: bool) -> list[str]:
    """The same options as `--set tls.KEY=VALUE` overrides of a scenario (`run`)."""
    import json

    return [f"tls.{name}={json.dumps(value)}"
            for name, value in cli_tls(cacert, cert, key, insecure).items()]
