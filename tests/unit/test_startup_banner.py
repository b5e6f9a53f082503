"""The command the start-up banner suggests (expound/server/app.py try_command)."""

from __future__ import annotations

from pathlib import Path

from expound.server.app import DEMO_APPLICANT, try_command
from expound.settings import Settings
from tests.conftest import GBM, ROOT


def test_with_the_demo_model_it_explains_the_example_applicant(settings: Settings) -> None:
    command = try_command(settings, 50051, [GBM, "german-credit-logistic"])
    assert command.endswith(f"explain --model {GBM} --applicant {DEMO_APPLICANT}")
    assert (ROOT / DEMO_APPLICANT).is_file()


def test_with_a_teams_own_model_it_shows_that_models_schema(settings: Settings) -> None:
    # It suggested the demo model and applicant, which that server does not serve.
    command = try_command(settings, 50072, ["acme-rf"])
    assert command == f".venv/bin/expound --target {settings.host}:50072 models show acme-rf"
    assert try_command(settings, 50072, []).endswith(" models list")


def test_it_names_the_credentials_the_server_asks_for(settings: Settings, tmp_path: Path) -> None:
    tls = {"tls_cert_file": tmp_path / "cert.pem"}
    client_ca = {**tls, "tls_client_ca_file": tmp_path / "ca.pem"}
    tokens = {"tokens_file": tmp_path / "tokens"}

    def credentials(**update: object) -> str:
        command = try_command(settings.model_copy(update=update), 1, ["acme-rf"])
        return command.removeprefix(f".venv/bin/expound --target {settings.host}:1").removesuffix(
            " models show acme-rf"
        )

    assert credentials(**tls, **tokens) == " --tls-ca CA_FILE --token TOKEN"
    # mTLS alone: the certificate is the credential (a token was suggested, which no
    # tokens file could admit).
    assert credentials(**client_ca) == " --tls-ca CA_FILE --cert CERT_FILE --key KEY_FILE"
    assert credentials(**client_ca, **tokens) == (
        " --tls-ca CA_FILE --cert CERT_FILE --key KEY_FILE"
    )
    # Tokens on loopback without TLS: a token is still needed (none was suggested).
    assert credentials(**tokens) == " --token TOKEN"
    assert credentials(jwt_public_key_file=tmp_path / "idp.pem") == " --token TOKEN"
    assert credentials() == ""
