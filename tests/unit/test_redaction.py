import pytest

from inquest.domain.redaction import redact

CASES = [
    # (text, secret that must vanish, context that must survive)
    ("Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz", "Authorization"),
    ("token=s3cr3tv4lue&user=bob", "s3cr3tv4lue", "user=bob"),
    ("DB_PASSWORD=hunter2hunter2", "hunter2hunter2", "DB_PASSWORD"),
    ('{"password": "p@55w0rd!", "user": "app"}', "p@55w0rd!", '"user": "app"'),
    ("postgres://app:Sup3rS3cret@db.shop.svc:5432/orders", "Sup3rS3cret", "db.shop.svc:5432/orders"),
    ("key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE", "in env"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nnext", "MIIEowIBAAKCAQEA",
     "next"),
    ("OPENAI_API_KEY: sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234", "OPENAI_API_KEY"),
    ("ghp_" + "a" * 36, "a" * 36, ""),
    ("xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij", ""),
    ("client_secret: 'zzTopSecret99'", "zzTopSecret99", "client_secret"),
]


@pytest.mark.parametrize(("text", "secret", "context"), CASES)
def test_credentials_are_redacted_and_context_kept(text, secret, context):
    out = redact(text)
    assert secret not in out
    assert "[REDACTED:" in out
    assert context in out


@pytest.mark.parametrize("text", [
    "Back-off restarting failed container app in pod checkout-7d9f",
    "OOMKilled: container exceeded memory limit 256Mi",
    "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "image: registry.example.com/shop/checkout:1.4.2",
    "passed 12 tests; tokenizer ready",
    "env:\n- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db-credentials, key: password}",
    "secretKeyRef:\n  name: db-credentials",
])
def test_ordinary_triage_text_is_untouched(text):
    assert redact(text) == text


def test_redaction_is_idempotent():
    once = redact("password=abc12345 and Bearer qwertyuiop1234")
    assert redact(once) == once


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(max_size=200), suffix=st.text(max_size=200),
       secret=st.from_regex(r"[A-Za-z0-9]{12,40}", fullmatch=True),
       key=st.sampled_from(["password", "TOKEN", "api_key", "client-secret", "DB_PASSWORD"]))
def test_planted_key_value_secret_always_vanishes(prefix, suffix, secret, key):
    out = redact(f"{prefix} {key}={secret} {suffix}")
    assert f"{key}={secret}" not in out
    assert redact(out) == out
