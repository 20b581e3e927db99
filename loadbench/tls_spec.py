"""The scenario's `tls:` mapping (a pydantic model, apart from `tls.py`, which shards import
and which must stay light)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TlsSpec(BaseModel):
    """The scenario's `tls:` mapping; paths are relative to the scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cacert: str | None = Field(None, description="PEM file of the CA(s) to trust instead "
                               "of the system's (a private CA, a self-signed server)")
    cert: str | None = Field(None, description="PEM client certificate (mTLS); may hold "
                             "the key too")
    key: str | None = Field(None, description="PEM private key of 'cert' (unencrypted)")
    insecure: bool = Field(False, description="do not verify the server's certificate")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSpec:
        if self.key is not None and self.cert is None:
            raise ValueError("'key' needs 'cert' (the client certificate it belongs to)")
        return self
