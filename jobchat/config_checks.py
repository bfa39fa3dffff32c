"""Small pure checks the settings use (kept apart so jobchat.config stays about settings)."""

from __future__ import annotations

from urllib.parse import urlsplit


def port_of(url: str) -> None:
    try:
        urlsplit(url).port  # noqa: B018 (urllib checks the port only when asked for it)
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None


def readable(message: str) -> str:
    """pydantic's "Input should be greater than or equal to 1" as "must be at least 1"."""
    for theirs, ours in (
        ("Input should be greater than or equal to", "must be at least"),
        ("Input should be greater than", "must be more than"),
        ("Input should be less than or equal to", "must be at most"),
        ("Input should be less than", "must be less than"),
        (
            "Input should be a valid integer, unable to parse string as an integer",
            "must be a whole number",
        ),
        ("Input should be a valid integer", "must be a whole number"),
        ("Input should be a valid number, unable to parse string as a number", "must be a number"),
        ("Input should be a valid boolean, unable to interpret input", "must be true or false"),
    ):
        if message.startswith(theirs):
            return ours + message[len(theirs) :]
    return message


def origins_of(value: str) -> tuple[str, ...]:
    """JOBCHAT_EMBED_ORIGINS as a tuple of origins (``scheme://host[:port]``, lower-cased, as a
    browser states them); raises ValueError naming the first that is not one."""
    origins: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            parts = urlsplit(item)
            port = parts.port
        except ValueError:
            raise ValueError(f"{item!r} is not an origin (its port is not a number)") from None
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or any(ch.isspace() or ch in "'\";" for ch in item)
        ):
            raise ValueError(
                f"{item!r} is not an origin: scheme://host[:port], such as "
                "https://ats.example.com, with no path"
            )
        host = parts.hostname.lower()
        host = f"[{host}]" if ":" in host else host
        origins.append(f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else ""))
    return tuple(dict.fromkeys(origins))


def secure_context(url: str) -> bool:
    """Will browsers treat pages of ``url`` as a secure context (and so keep its Secure
    cookies)? https://, and http:// on loopback, which browsers trust as well."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
    return parts.scheme == "https" or (parts.scheme == "http" and loopback)
