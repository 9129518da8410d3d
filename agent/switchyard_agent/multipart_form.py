"""A small, byte-exact multipart/form-data parser for the fake model server.

Starlette's own form parsing needs python-multipart, which is not a dependency; the fake server only needs
whole in-memory bodies, and the stdlib email parser is not byte-exact for binary parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FormData:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)


def _header_params(name: str, value: str) -> Message:
    # email.message knows RFC 2231 and quoting rules for header parameters; reuse it for just that.
    message = Message()
    message[name] = value
    return message


def parse_multipart(body: bytes, content_type: str) -> FormData:
    boundary = _header_params("content-type", content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    form = FormData()
    delimiter = b"--" + boundary.encode("latin-1")
    parts = body.split(delimiter)
    if len(parts) < 3 or not parts[-1].startswith(b"--"):
        raise ValueError("truncated multipart body")
    for part in parts[1:-1]:
        # The CRLF before each delimiter belongs to the delimiter, not to the part before it.
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, data = part.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without headers")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = _header_params("content-disposition", headers.get("content-disposition", ""))
        name = disposition.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = disposition.get_filename()
        if filename is None:
            form.fields[name] = data.decode("utf-8", "replace")
        else:
            upload = UploadedFile(filename, headers.get("content-type", "application/octet-stream"), data)
            form.files.setdefault(name, []).append(upload)
    return form
