"""No token, header or credential in any message: the CLI given a corpus of bad tokens, bad
hub URLs and bad files answers each with a clear error that quotes none of them.

(httpx quotes an illegal header value whole: a token with a trailing line ending used to be
printed as ``Illegal header value b'Bearer fpk_...\\r'`` under "cannot reach the hub".)
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path

import pytest
from harness import clean_env, fedpark_argv

from fedpark.experiments.protocol.client import HubClient, check_token, check_url
from fedpark.experiments.protocol.errors import HubError, InvalidTokenError

SECRET = "fpk_S3cretT0kenBody-abcdefghijklmnopqrstuvwxyz0123"
PASSWORD = "Pa55w0rdInUrl"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEAD = f"http://127.0.0.1:{_dead_port()}"

# token -> what the error must say
TOKENS = {
    SECRET + "\r": "line ending",
    SECRET + "\r\n": "line ending",
    SECRET + "\n": "line ending",
    SECRET + " ": "space",
    " " + SECRET: "space",
    "\t" + SECRET: "space",
    SECRET[:20] + " " + SECRET[20:]: "characters a token never has",
    SECRET + "\x00": "characters a token never has",
    SECRET + "é": "characters a token never has",
    SECRET[:5]: "characters long",
    SECRET * 20: "characters long",
}
URLS = {
    f"http://admin:{PASSWORD}@127.0.0.1:9": "user name or password",
    "ftp://127.0.0.1/": "http or https",
    "127.0.0.1:8470": "http or https",
    "not a url at all": "http or https",
}


def _cli(*args: str, token: str | None = None, hub: str = DEAD) -> str:
    env = clean_env(FEDPARK_HUB=hub, **({"FEDPARK_TOKEN": token} if token is not None else {}))
    done = subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode in (1, 2), (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("token", sorted(TOKENS), ids=repr)
def test_a_malformed_token_is_refused_before_use_and_never_quoted(token: str) -> None:
    with pytest.raises(InvalidTokenError, match=TOKENS[token]) as refused:
        check_token(token)
    message = str(refused.value)
    assert SECRET[:12] not in message and "Bearer" not in message


@pytest.mark.parametrize("url", sorted(URLS))
def test_a_bad_hub_url_is_refused_and_never_echoes_credentials(url: str) -> None:
    with pytest.raises(HubError, match=URLS[url]) as refused:
        check_url(url)
    assert PASSWORD not in str(refused.value)


def test_an_unreachable_hub_is_named_without_the_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with HubClient(DEAD, SECRET) as api, pytest.raises(HubError) as failed:
        api.me()
    message = str(failed.value)
    assert message == (
        f"cannot reach the hub at {DEAD}: connection failed (refused, unknown host, or TLS "
        "not trusted)"
    )
    assert SECRET not in message and SECRET not in caplog.text


@pytest.mark.integration  # thirteen runs of the real `fedpark` command, each its own process
def test_the_cli_says_what_is_wrong_and_quotes_no_secret(tmp_path: Path) -> None:
    """Every command path a factory or researcher runs first, with each bad input."""
    data = tmp_path / "line.csv"
    data.write_text("a,b\n1,2\n")
    outputs = []
    for token, expected in [(SECRET + "\r\n", "line ending"), (SECRET + " ", "space")]:
        for args in (
            ("whoami",),
            ("contract", "list"),
            ("factory", "join", "--data", str(data), "--work-dir", str(tmp_path / "w")),
            ("contract", "declare", "c-1", "1.0.0", str(data), "--name", "line"),
        ):
            output = _cli(*args, token=token)
            assert expected in output, (args, output)
            outputs.append(output)
    for url, expected in URLS.items():
        output = _cli("whoami", token=SECRET, hub=url)
        assert expected in output, (url, output)
        outputs.append(output)
    output = _cli("whoami", token=SECRET)  # a well-formed token, nobody listening
    assert "cannot reach the hub" in output and "connection failed" in output
    outputs.append(output)
    everything = "\n".join(outputs)
    assert SECRET[:12] not in everything and PASSWORD not in everything
    assert "Bearer" not in everything and "Authorization" not in everything


@pytest.mark.integration  # runs the real `fedpark` command
def test_factory_join_never_takes_the_token_on_its_command_line(tmp_path: Path) -> None:
    """`factory join` runs for days: a token in its argv is in `ps` for every user."""
    data = tmp_path / "line.csv"
    data.write_text("a,b\n1,2\n")
    done = subprocess.run(
        fedpark_argv("factory", "join", "--data", str(data), "--token", SECRET),
        env=clean_env(COLUMNS="300", FEDPARK_HUB=DEAD),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "put it in a file (--token-file) or FEDPARK_TOKEN" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "fedpark-factory").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (SECRET + "\r\n", None),  # saved on Windows: the line ending is not the token's
        (SECRET + "\n", None),
        ("", "must hold one API token and nothing else (`fedpark token create -o FILE`"),
        (f"{SECRET} {SECRET}\n", "must hold one API token and nothing else"),
        (b"\xff\xfe", "cannot read"),
        ("fpk_xxx", "token: the API token is 7 characters long: not a token (`fedpark token"),
    ],
)
def test_token_files(
    tmp_path: Path, content: str | bytes, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from fedpark.clients.cli.common import read_token

    path = tmp_path / "token"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    path.chmod(0o600)
    if expected is None:
        assert read_token(path) == SECRET
        assert capsys.readouterr().err == ""
        path.chmod(0o644)  # others may read it: used, with a warning
        assert read_token(path) == SECRET
        assert f"warning: {path} may be read by other users" in capsys.readouterr().err
        return
    with pytest.raises(typer.BadParameter) as raised:
        read_token(path)
    assert expected in str(raised.value) and SECRET not in str(raised.value)
    assert str(path) in str(raised.value)
