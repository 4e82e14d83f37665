"""Reliability suite: schemathesis over the app's own OpenAPI document, every check on, on both
databases: no 5xx and no response the document does not describe.

In-process (ASGI), authenticated as a trusted admin so that routes are exercised beyond the 401,
with a bounded, derandomized number of examples per operation so the suite stays fast. Two runs:
one with free parameters (mostly unknown jobs and uploads: the 404/422 paths), one pinned to the
``key`` of a registered job so that tags, uploads, files and attributes work on a real job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.config import PositiveDataAcceptanceConfig, SimpleCheckConfig
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.python import asgi

from jp_primary.app import create_app
from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from tests.helpers import ALICE, job_body, make_settings

MAX_EXAMPLES = 12
JOB_KEY = "schemathesis-job-0001"
JOBID = f"https://lb.example.org:9000/{JOB_KEY}"


def _schema(**parameters: str) -> schemathesis.schemas.BaseSchema:
    schema = schemathesis.openapi.from_dict(create_app().openapi())
    if parameters:
        schema.config.update(parameters=parameters)
    # Every check is enabled by default (not_a_server_error, status_code_conformance,
    # content_type_conformance, response_schema_conformance, response_headers_conformance,
    # negative_data_rejection, positive_data_acceptance, use_after_free, ...); none is excluded.
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    checks = schema.config.checks
    # 422 is also the documented answer to text that is schema-valid but semantically wrong and
    # that no JSON schema can express: an unknown file class (classes come from the installed
    # plugins), a jobid that is not https://<server>/<unique>. Every other status of valid data
    # is still a failure. 413 likewise answers schema-valid bodies over a limit the operator
    # configures (JP_MAX_TAGS_PER_REQUEST below the schema's hard bound of 1,000 tags).
    checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=[*checks.positive_data_acceptance.expected_statuses, "413", "422"]
    )
    # A body over JP_MAX_JSON_BODY is refused with 413 before it is read (so before validation).
    checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=[*checks.negative_data_rejection.expected_statuses, "413"]
    )
    # `Allow` lists what the server really serves: GET /v1/jobs/bulk reads the job whose key is
    # "bulk" (the path also matches /v1/jobs/{key}), which a per-path OpenAPI document cannot say.
    # tests/api/test_files.py checks Allow on 405 directly.
    checks.allow_header_conformance = SimpleCheckConfig(enabled=False)
    return schema


FREE = _schema()
ON_A_JOB = _schema(key=JOB_KEY)
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Served:
    app: FastAPI
    headers: dict[str, str]


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One app per database, its lifespan run by schemathesis' in-process client."""
    config = make_settings(tmp_path_factory.mktemp("schemathesis"), database_url)
    token = ServiceTokens(load_or_create_key(config.token_key_path)).issue(
        ALICE, (Role.TRUSTED, Role.ADMIN), ttl=3600
    )
    app = create_app(config)
    headers = {"Authorization": f"Bearer {token}"}
    with asgi.get_client(app) as client:
        registered = client.post("/v1/jobs", json=job_body(JOBID), headers=headers)
        assert registered.status_code in (200, 201), registered.text
    yield Served(app, headers)
    asgi.shutdown_lifespans()


@FREE.parametrize()
@HYPOTHESIS
def test_openapi_conformance_free_parameters(case: Case, served: Served) -> None:
    case.call_and_validate(app=served.app, headers=served.headers)


@ON_A_JOB.parametrize()
@HYPOTHESIS
def test_openapi_conformance_on_a_registered_job(case: Case, served: Served) -> None:
    case.call_and_validate(app=served.app, headers=served.headers)
