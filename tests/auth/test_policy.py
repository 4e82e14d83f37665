from __future__ import annotations

from pathlib import Path

import pytest

from jp_primary.auth.identity import Identity, Role
from jp_primary.auth.policy import load_policy, parse_policy
from jp_primary.errors import ConfigurationError

LB_HOST = "/DC=org/DC=example/O=JP Services/CN=host/lb.example.org"
IAM = "https://iam.example.org/"

POLICY = f"""
[trusted]
dns = ["CN=host/lb.example.org,O=JP Services,DC=example,DC=org"]
dn_globs = ["/DC=org/DC=example/O=JP Importers/CN=host/*"]
subjects = ["importer-service"]

[indexer]
dn_regexes = ['/DC=org/DC=example/O=JP Services/CN=host/jpis[0-9]+\\.example\\.org']
tokens = [{{ issuer = "{IAM}", sub = "indexer-7" }}]

[admin]
groups = [{{ issuer = "{IAM}", group = "/jp/admins" }}]
"""


def x509(subject: str) -> Identity:
    return Identity(subject=subject, method="x509")


@pytest.fixture
def policy_text() -> str:
    return POLICY


def test_exact_dn_given_in_rfc4514_matches_the_slash_subject(policy_text: str) -> None:
    assert parse_policy(policy_text).roles_for(x509(LB_HOST)) == {Role.TRUSTED}


def test_dn_glob_and_regex(policy_text: str) -> None:
    policy = parse_policy(policy_text)
    importer = "/DC=org/DC=example/O=JP Importers/CN=host/imp1.example.org"
    assert policy.roles_for(x509(importer)) == {Role.TRUSTED}
    jpis = "/DC=org/DC=example/O=JP Services/CN=host/jpis12.example.org"
    assert policy.roles_for(x509(jpis)) == {Role.INDEXER}
    # Regexes must match the whole DN, not a prefix or a part of it.
    assert policy.roles_for(x509(jpis + "/CN=12345")) == frozenset()
    assert policy.roles_for(x509("/O=Other" + jpis)) == frozenset()


def test_dn_entries_match_only_certificate_identities(policy_text: str) -> None:
    policy = parse_policy(policy_text)
    assert policy.roles_for(Identity(subject=LB_HOST, method="frontend")) == {Role.TRUSTED}
    token_named_like_a_dn = Identity(subject=LB_HOST, method="token", issuer="jp-primary")
    assert policy.roles_for(token_named_like_a_dn) == frozenset()


def test_subjects_tokens_and_groups(policy_text: str) -> None:
    policy = parse_policy(policy_text)
    assert policy.roles_for(Identity(subject="importer-service")) == {Role.TRUSTED}
    indexer = Identity(subject=f"{IAM}#indexer-7", issuer=IAM)
    assert policy.roles_for(indexer) == {Role.INDEXER}
    admin = Identity(subject=f"{IAM}#u1", issuer=IAM, groups=frozenset({"/jp", "/jp/admins"}))
    assert policy.roles_for(admin) == {Role.ADMIN}
    other_issuer = Identity(subject="x#u1", issuer="https://x", groups=frozenset({"/jp/admins"}))
    assert policy.roles_for(other_issuer) == frozenset()


def test_apply_adds_roles_and_keeps_existing_ones(policy_text: str) -> None:
    policy = parse_policy(policy_text)
    token = Identity(subject="importer-service", roles=frozenset({Role.ADMIN}))
    assert policy.apply(token).roles == {Role.ADMIN, Role.TRUSTED}
    nobody = Identity(subject="nobody", roles=frozenset({Role.INDEXER}))
    assert policy.apply(nobody) is nobody


def test_load_policy_from_file(tmp_path: Path, policy_text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(policy_text)
    assert load_policy(path).roles_for(x509(LB_HOST)) == {Role.TRUSTED}
    assert load_policy(None).roles_for(x509(LB_HOST)) == frozenset()


@pytest.mark.parametrize(
    "text",
    [
        "[superuser]\nsubjects = ['x']\n",
        "[trusted]\nusers = ['x']\n",
        "[trusted]\ndns = ['CN=a/O=b,DC=c']\n",
        "[trusted]\ndns = 'not a list'\n",
        "[trusted]\ndn_regexes = ['(']\n",
        "[trusted]\ngroups = ['/no/issuer']\n",
        "[trusted]\ntokens = [{ sub = 'x' }]\n",
        "trusted = 'x'\n",
        "[trusted\n",
    ],
)
def test_bad_policy_refuses_to_start(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_policy(text)


def test_missing_policy_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_policy(tmp_path / "absent.toml")
