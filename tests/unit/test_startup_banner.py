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


def test_with_tls_it_names_the_ca_and_token(settings: Settings, tmp_path: Path) -> None:
    secured = settings.model_copy(update={"tls_cert_file": tmp_path / "cert.pem"})
    assert " --tls-ca CA_FILE --token TOKEN models show acme-rf" in try_command(
        secured, 1, ["acme-rf"]
    )
