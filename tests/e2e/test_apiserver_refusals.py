"""`reconciler simulate` refuses what kube-apiserver refuses, whoever writes the object.

A template that stamps an object a real API server would refuse must fail that stamp (the
Workload does not become Ready, exit 1, the condition names the field); an input object a real
API server would refuse stops the run before anything is reconciled (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult
from tests.manifests import greeter_chain

SUPPLY_CHAIN = greeter_chain("{name}") + """\
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hello
  namespace: default
  labels:
    app.example.com/type: greeter
spec: {{}}
"""


def _conditions(result: CliResult) -> dict[str, dict[str, str]]:
    workload = result.json()["workloads"][0]
    return {c["type"]: c for c in workload["status"]["conditions"]}


def test_a_template_stamping_an_invalid_name_fails_the_workload(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "chain.yaml").write_text(SUPPLY_CHAIN.format(name="Bad_Name"))
    result = cli("simulate", str(tmp_path), "-o", "json")
    assert result.code == 1, result.stdout + result.stderr
    conditions = _conditions(result)
    assert conditions["Ready"]["status"] == "False"
    submitted = conditions["ResourcesSubmitted"]
    assert submitted["status"] == "False"
    assert submitted["reason"] == "TemplateRejectedByAPIServer"
    assert ('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
            in submitted["message"])
    assert not [o for o in result.json()["objects"] if o["kind"] == "ConfigMap"]
    table = cli("simulate", str(tmp_path))
    assert table.code == 1
    assert "TemplateRejectedByAPIServer" in table.stdout


def test_the_same_template_with_a_valid_name_is_ready(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "chain.yaml").write_text(
        SUPPLY_CHAIN.format(name="$(workload.metadata.name)$-greeting"))
    result = cli("simulate", str(tmp_path), "-o", "json")
    assert result.code == 0, result.stdout + result.stderr
    assert _conditions(result)["Ready"]["status"] == "True"


def test_an_input_service_named_with_a_dot_exits_2(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a.b\n"
        "spec:\n  ports:\n    - port: 80\n")
    result = cli("simulate", str(tmp_path))
    assert result.code == 2, result.stdout + result.stderr
    # Refused when loaded, with the line of the name and kube-apiserver's words.
    assert ('service.yaml:4: Service/a.b: field metadata.name: Invalid value: "a.b": a DNS-1035 '
            "label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
            "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ) in result.stderr
    assert "Traceback" not in result.stderr


def test_an_input_secret_with_data_that_is_not_base64_exits_2(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: hunter2!\n")
    result = cli("simulate", str(tmp_path))
    assert result.code == 2, result.stdout + result.stderr
    assert ("secret.yaml:6: Secret/creds: field data[password]: illegal base64 data at input "
            "byte 7") in result.stderr
