"""HTCondor user logs through the API: condor:// jobids, L&B values and the JobRecord."""

from __future__ import annotations

import random

import pytest

from jp_primary.attributes import names
from jp_primary.testing.condorlogs import LogWriter
from tests.helpers import ALICE, Api, post_job, register_job


def put_log(api: Api, key: str, text: str) -> dict:  # type: ignore[type-arg]
    response = api.client.put(
        f"/v1/jobs/{key}/files/condor-log", content=text.encode(), headers=api.auth(ALICE)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def values_of(api: Api, key: str, name: str) -> list[dict]:  # type: ignore[type-arg]
    response = api.client.get(
        f"/v1/jobs/{key}/attributes", params={"name": name}, headers=api.auth(ALICE)
    )
    assert response.status_code == 200, response.text
    return response.json()["values"]  # type: ignore[no-any-return]


def test_a_condor_jobid_is_registered_with_a_schedd_qualified_key(api: Api) -> None:
    cluster = random.randrange(10**6)
    response = post_job(api, f"condor://Submit.Example.org:9618/{cluster}.0")
    assert response.status_code == 201, response.text
    assert response.json()["key"] == f"submit.example.org_{cluster}.0"
    # The same cluster.proc of another schedd is another job.
    other = post_job(api, f"condor://other.example.org/{cluster}.0")
    assert other.json()["key"] == f"other.example.org_{cluster}.0"
    # Another spelling of the same schedd and job is the same key: a conflict, not a new job.
    again = post_job(api, f"condor://submit.example.org/{cluster}.0")
    assert again.status_code == 409


@pytest.mark.parametrize(
    "jobid", ["condor://submit.example.org/1234", "condor:///1.0", "condor://a_b/1.0"]
)
def test_malformed_condor_jobids_are_refused(api: Api, jobid: str) -> None:
    response = post_job(api, jobid)
    assert response.status_code == 422
    assert "condor://<schedd host>[:port]/<cluster>.<proc>" in response.text


def test_a_condor_log_gives_lb_status_and_a_record(api: Api) -> None:
    cluster = random.randrange(10**6)
    jobid = f"condor://submit.example.org/{cluster}.0"
    key = register_job(api, jobid=jobid)
    w = LogWriter()
    w.submit(f"{cluster}.0")
    w.execute(f"{cluster}.0", 60)
    w.terminated(f"{cluster}.0", 300, code=3)
    committed = put_log(api, key, w.text())
    assert committed["extraction"]["errors"] == []
    [status] = values_of(api, key, "lb:status")
    assert (status["value"], status["origin"], status["origin_detail"]) == (
        "Done",
        "FILE",
        "condor-log",
    )
    assert [v["value"] for v in values_of(api, key, "lb:exitCode")] == ["3"]
    assert [v["value"] for v in values_of(api, key, "condor:returnValue")] == ["3"]
    record = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert record.status_code == 200, record.text
    assert "<a:finalStatus>DONE</a:finalStatus>" in record.text
    assert f'jobid="{jobid}"' in record.text


def test_a_multi_job_log_keeps_each_jobs_values_apart(api: Api) -> None:
    key = register_job(api)
    w = LogWriter()
    w.submit("5.0")
    w.submit("5.1")
    w.terminated("5.0", 100)
    put_log(api, key, w.text())
    jobs = sorted((v["value"], v["origin_detail"]) for v in values_of(api, key, "condor:jobs"))
    assert jobs == [("5.0", "condor-log 5.0"), ("5.1", "condor-log 5.1")]
    status = {v["origin_detail"]: v["value"] for v in values_of(api, key, "lb:status")}
    assert status == {"condor-log 5.0": "Done", "condor-log 5.1": "Ready"}
    assert names.LB_ATTRIBUTES  # the values are in the L&B namespace (lb: alias)


def test_a_multi_job_log_gives_no_record(api: Api) -> None:
    key = register_job(api)
    w = LogWriter()
    w.submit("6.0")
    w.submit("6.1")
    put_log(api, key, w.text())
    record = api.client.get(f"/v1/jobs/{key}/record", headers=api.auth(ALICE))
    assert record.status_code == 404
    assert "condor-log file yields no JobRecord" in record.text
