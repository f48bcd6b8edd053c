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
    # a quoted value is hidden whole, spaces included
    ('password="correct horse battery"', "horse", 'password="'),
    ("token: 'abc def ghi' # rotated", "def", "# rotated"),
    # a key word glued to a prefix
    ("PGPASSWORD=hunter2 psql -h db", "hunter2", "psql -h db"),
    ("dbpassword: s3cr3tvalue", "s3cr3tvalue", "dbpassword"),
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
    "compass=north bypass: true",
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


# --------------------------------------------------------------------------- more text rules

import json  # noqa: E402
import time  # noqa: E402

from inquest.domain.redaction import (  # noqa: E402
    FIELD_MARKER,
    RULES,
    is_secret_name,
    redact_cut,
    redact_object,
)

CANARY = "canary-9f3b2c7e41d84a6f"


@pytest.mark.parametrize(("text", "rule"), [
    # an env var in YAML: the name says "secret", the value sits on the next line
    (f"env:\n- name: DB_PASSWORD\n  value: {CANARY}\n- name: LOG_LEVEL\n  value: info", "name-value"),
    (f'- name: "API_TOKEN"\n  value: "{CANARY}"', "name-value"),
    (f'[{{"name": "DB_PASSWORD", "value": "{CANARY}"}}]', "name-value"),
    (f"password: {CANARY}", "key-value"),
    (f"example.com/token: {CANARY}", "key-value"),
    (f"Authorization: Bearer {CANARY}", "bearer"),
    (f"client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo{CANARY.replace('-', '')}", "pem-base64"),
    (f"SLACK=xoxb-{CANARY}", "slack-token"),
])
def test_more_credential_shapes(text, rule):
    out = redact(text)
    assert CANARY not in out and f"[REDACTED:{rule}]" in out
    assert redact(out) == out


def test_plain_values_of_ordinary_env_vars_stay():
    text = "env:\n- name: LOG_LEVEL\n  value: debug\n- name: TOKENIZER_THREADS\n  value: '4'"
    assert "debug" in redact(text)


def test_the_tail_of_a_private_key_whose_begin_line_was_cut_away():
    body = "MIIEowIBAAKCAQEAuVx3mNq8xZ0u1e4r\nQ2hc9Zt0yq3e7fW1oGx0kP8s2nFz5a1b\n"
    text = f"log line\n{body}-----END RSA PRIVATE KEY-----\nnext line"
    out = redact(text)
    assert "MIIEowIBAAKCAQEA" not in out and "Q2hc9Zt0" not in out
    assert out == "log line\n[REDACTED:private-key]\nnext line"
    assert redact("no body\n-----END PRIVATE KEY-----") == "no body\n-----END PRIVATE KEY-----"


# --------------------------------------------------------------------------- structural rules


@pytest.mark.parametrize(("name", "secret"), [
    ("DB_PASSWORD", True), ("password", True), ("example.com/token", True), ("OPENAI_API_KEY", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("SECRET_KEY_BASE", True), ("client-key-data", True), ("tls.key", True),
    ("STRIPE_KEY", True), ("clientSecret", True), ("SENTRY_DSN", True), ("SMTP_PASS", True),
    ("secretName", False), ("secretKeyRef", False), ("key", False), ("tokenExpirationSeconds", False),
    ("passwordFile", False), ("LOG_LEVEL", False), ("max_tokens", False), ("tokenizer", False),
    ("publicKey", False), ("cache_key", False), ("DATABASE_URL", False), ("auth-url", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_objects_are_redacted_by_structure():
    pod = {
        "metadata": {"name": "api", "annotations": {"example.com/token": CANARY, "team": "shop"},
                     "labels": {"app": "api"}},
        "spec": {"automountServiceAccountToken": True, "containers": [{
            "name": "app", "args": ["--password", CANARY, "--user", "bob", "--db-password=" + CANARY],
            "env": [{"name": "DB_PASSWORD", "value": CANARY}, {"name": "PIN_CODE_PASSWORD", "value": 1234},
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "key"}}}],
            "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "db-creds"}}]},
    }
    configmap = {"data": {"password": CANARY, "app.properties": f"db.password={CANARY}\n", "greeting": "hello"}}
    out = redact_object(json.loads(json.dumps(pod)))
    text = json.dumps(out)
    assert text.count(CANARY) == 1 and f"--db-password={CANARY}" in text  # the =form is the text rules' job
    assert CANARY not in redact(text)
    container = out["spec"]["containers"][0]
    assert container["env"][0]["value"] == FIELD_MARKER and container["env"][1]["value"] == FIELD_MARKER
    assert container["env"][2]["value"] == "info"
    assert container["env"][3]["valueFrom"] == {"secretKeyRef": {"name": "api", "key": "key"}}  # a reference
    assert container["args"][:4] == ["--password", FIELD_MARKER, "--user", "bob"]
    assert out["metadata"]["annotations"] == {"example.com/token": FIELD_MARKER, "team": "shop"}
    assert out["spec"]["automountServiceAccountToken"] is True
    assert out["spec"]["volumes"][0]["secret"]["secretName"] == "db-creds"
    cm = redact_object(configmap)
    assert cm["data"]["password"] == FIELD_MARKER and cm["data"]["greeting"] == "hello"
    assert CANARY in cm["data"]["app.properties"] and CANARY not in redact(cm["data"]["app.properties"])


def test_structural_redaction_is_iterative():
    deep: dict = {}
    node = deep
    for _ in range(5000):  # far beyond Python's recursion limit
        node["next"] = {}
        node = node["next"]
    node["password"] = CANARY
    redact_object(deep)
    assert node["password"] == FIELD_MARKER


# --------------------------------------------------------------------------- redact, then cut


@settings(max_examples=200, deadline=None)
@given(head=st.text(alphabet="ab \n=:", max_size=300), tail=st.text(alphabet="ab \n=:", max_size=300),
       key=st.sampled_from(["password", "token", "Authorization: Bearer", "DB_PASSWORD"]),
       sep=st.sampled_from(["=", ": ", " = "]), limit=st.integers(min_value=0, max_value=700),
       scan_limit=st.sampled_from([50, 1_000_000]))
def test_a_cut_never_shows_part_of_a_credential(head, tail, key, sep, limit, scan_limit):
    secret = "Zq8Xw3Vr7Tn2Lm5Kp9"
    text = f"{head} {key}{'' if 'Bearer' in key else sep}{' ' if 'Bearer' in key else ''}{secret} {tail}"
    out = redact_cut(text, limit, scan_limit=scan_limit)
    assert not any(secret[i:i + 6] in out for i in range(len(secret) - 5))
    assert len(out) <= max(limit, 60) + 40  # bounded (a marker may replace a shorter value)


def test_a_huge_text_is_not_scanned_whole():
    line = "x " * 1_000_000 + f"password={CANARY}"
    out = redact_cut(line, 4000)
    assert len(out) <= 4000 and CANARY not in out and "chars cut unread" in out
    assert redact_cut("y" * 2_000_000, 100).startswith(" [... 2000000 chars cut unread")


ADVERSARIAL = ["_password", "password.", "a.", "a://b:c", "bearer ", "-eyJ", "eyJaaaaa.", "-xoxb", "sk-", "ghp_",
               "-----BEGIN A PRIVATE KEY-----", "LS0tLS1CRUdJTi", "name: DB_PASSWORD\n", "name: ", "token=", " ",
               "AKIA", "AIza", "auth_auth_", "passwordpassword-", "MIIEowIBAAKCAQEA\n-----END PRIVATE KEY-----\n"]


def test_rules_run_in_linear_time_on_hostile_text():
    """A guard against catastrophic backtracking, not a speed test: 100 kB of each pattern's worst
    input took minutes with the first rule set (quadratic) and takes milliseconds now; the bound
    below is some 50 times the time measured."""
    assert len(RULES) >= 10
    started = time.perf_counter()
    for unit in ADVERSARIAL:
        redact(unit * (100_000 // len(unit)))
    assert time.perf_counter() - started < 30
