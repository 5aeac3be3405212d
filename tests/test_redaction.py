"""Redaction of PII and secrets: each kind found, look-alikes and placeholders kept, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragdeck.console.ingest.loaders import load_documents
from ragdeck.console.ingest.redaction import TAGS, redact

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_corpus"

# (text, expected redacted text, expected counts)
POSITIVE = [
    # e-mail, including a literal example address
    ("Mail ops.lead@example.org today.", "Mail [EMAIL] today.", {"EMAIL": 1}),
    ("#   username: 'username@example.com'", "#   username: '[EMAIL]'", {"EMAIL": 1}),
    ("CC prometheus-team@googlegroups.com.", "CC [EMAIL].", {"EMAIL": 1}),
    # phone numbers
    ("call +1 (555) 123-4567 now", "call [PHONE] now", {"PHONE": 1}),
    ("call +44 20 7946 0958.", "call [PHONE].", {"PHONE": 1}),
    ("whatsapp +4915112345678", "whatsapp [PHONE]", {"PHONE": 1}),
    ("Tel. +33 1 23 45 67 89", "Tel. [PHONE]", {"PHONE": 1}),
    ("(555) 123-4567", "[PHONE]", {"PHONE": 1}),
    ("555-123-4567 or 555.123.4567", "[PHONE] or [PHONE]", {"PHONE": 2}),
    ("toll free 1-800-555-1234", "toll free [PHONE]", {"PHONE": 1}),
    ("Berlin 030 1234567, London 020 7946 0958", "Berlin [PHONE], London [PHONE]", {"PHONE": 2}),
    ("Paris 01 23 45 67 89", "Paris [PHONE]", {"PHONE": 1}),
    # provider API keys
    ("key sk-abcdefghijklmnopqrstuvwx1234.", "key [API_KEY].", {"API_KEY": 1}),
    ("sk-proj-Ab3dEf6hIj9lMn0pQr1sTu2vWx3yZ4", "[API_KEY]", {"API_KEY": 1}),
    ("id AKIAIOSFODNN7EXAMPLE", "id [API_KEY]", {"API_KEY": 1}),
    ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[API_KEY]", {"API_KEY": 1}),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[API_KEY]", {"API_KEY": 1}),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "[API_KEY]", {"API_KEY": 1}),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "[API_KEY]", {"API_KEY": 1}),
    ("-e HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "-e HF_TOKEN=[API_KEY]", {"API_KEY": 1}),
    # tokens
    ("Authorization: Bearer abc123def456ghi789", "Authorization: Bearer [TOKEN]", {"TOKEN": 1}),
    ("curl -H 'Authorization: Bearer 9f8e7d6c5b4a'", "curl -H 'Authorization: Bearer [TOKEN]'", {"TOKEN": 1}),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [TOKEN]", {"TOKEN": 1}),
    ("send Bearer 0123456789abcdefghijXYZ", "send Bearer [TOKEN]", {"TOKEN": 1}),
    (
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
        "jwt [TOKEN]",
        {"TOKEN": 1},
    ),
    # private keys, also JSON-escaped
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234567890abcdefghij\nab==\n"
        "-----END RSA PRIVATE KEY-----",
        "[PRIVATE_KEY]",
        {"PRIVATE_KEY": 1},
    ),
    (
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
        '-----END PRIVATE KEY-----\\n"',
        '"private_key": "[PRIVATE_KEY]\\n"',
        {"PRIVATE_KEY": 1},
    ),
    # assignments: only the value goes
    ('password = "hunter2"', 'password = "[SECRET]"', {"SECRET": 1}),
    ("#   password: 'strongpassword'", "#   password: '[SECRET]'", {"SECRET": 1}),
    ('"client_secret": "s3cr3t-value"', '"client_secret": "[SECRET]"', {"SECRET": 1}),
    ('OpenAI(api_key="abc123XYZ")', 'OpenAI(api_key="[API_KEY]")', {"API_KEY": 1}),
    ("basic_auth:\n  password: hunter2\n", "basic_auth:\n  password: [SECRET]\n", {"SECRET": 1}),
    ("  bearer_token: abcdef123456  # rotate", "  bearer_token: [TOKEN]  # rotate", {"TOKEN": 1}),
    ("export DB_PASSWORD=hunter2", "export DB_PASSWORD=[SECRET]", {"SECRET": 1}),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYKEY",
        "aws_secret_access_key = [API_KEY]",
        {"API_KEY": 1},
    ),
    (
        "postgres://admin:hunter2@db.internal:5432/x",
        "postgres://admin:[SECRET]@db.internal:5432/x",
        {"SECRET": 1},
    ),
    # keys and tokens standing in prose
    ("Stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc here", "Stripe key [API_KEY] here", {"API_KEY": 1}),
    ("use glpat-xY12abCD34efGH56ijKL to clone", "use [API_KEY] to clone", {"API_KEY": 1}),
    (
        "Send it with bearer eyAbc123def456ghi789jkl0 please",
        "Send it with bearer [TOKEN] please",
        {"TOKEN": 1},
    ),
    (
        "The API key is 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c, keep it.",
        "The API key is [API_KEY], keep it.",
        {"API_KEY": 1},
    ),
    (
        "and the AWS secret access key is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
        "and the AWS secret access key is [API_KEY].",
        {"API_KEY": 1},
    ),
    ("her password was Tr0ub4dor&3 yesterday", "her password was [SECRET] yesterday", {"SECRET": 1}),
    ("the token was 9f8e7d6c5b4a39281716ab (rotated)", "the token was [TOKEN] (rotated)", {"TOKEN": 1}),
    ("the client secret: 8Xk2pQ9vLm3nR7tY.", "the client secret: [SECRET].", {"SECRET": 1}),
    # payment cards: issuer prefix and Luhn, bare or grouped
    ("Pay with 4111 1111 1111 1111 today.", "Pay with [CARD] today.", {"CARD": 1}),
    ("card 5500-0000-0000-0004 or 4111111111111111", "card [CARD] or [CARD]", {"CARD": 2}),
    ("Amex 3782 822463 10005, JCB 3530111333300000", "Amex [CARD], JCB [CARD]", {"CARD": 2}),
    ("ref 12 4111 1111 1111 1111", "ref 12 [CARD]", {"CARD": 1}),  # a number before it stays
    # IBANs: country length and mod 97
    ("IBAN GB82 WEST 1234 5698 7654 32.", "IBAN [IBAN].", {"IBAN": 1}),
    ("GB82 WEST 1234 5698 7654 32 1234 more", "[IBAN] 1234 more", {"IBAN": 1}),
    ("to DE89370400440532013000 or FR1420041010050500013M02606", "to [IBAN] or [IBAN]", {"IBAN": 2}),
    # national ids
    ("SSN 536-22-1234 on file", "SSN [NATIONAL_ID] on file", {"NATIONAL_ID": 1}),
    (
        "NI number AB 12 34 56 C (or AB123456C)",
        "NI number [NATIONAL_ID] (or [NATIONAL_ID])",
        {"NATIONAL_ID": 2},
    ),
    ("DNI 12345678Z, NIE X1234567L", "DNI [NATIONAL_ID], NIE [NATIONAL_ID]", {"NATIONAL_ID": 2}),
    ("SIN 130 692 544 or 130-692-544", "SIN [NATIONAL_ID] or [NATIONAL_ID]", {"NATIONAL_ID": 2}),
]

NEGATIVE = [
    # numbers that are not phone numbers
    "version 2.53.1 and v1.2.3.4",
    "listen on 127.0.0.1:9090 or [::1]:8080",
    "at 2024-01-01T00:00:00Z, 01-01 00:00 and 2023-10-15",
    'http_requests_total{code="200"} 1027 1395066363000',
    "latency 0.054 1520879607 and 5m30s",
    "commit d15adb9ad7e5d9fbde3a9a8f30200593a5a14d86",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "buckets +Inf, 1e+06, between -9 and +52",
    "rate(x[5m]) * 100 + 1000",
    "max_batch_tokens: 16384",
    "ISBN 978-3-16-148410-0",
    # configuration placeholders and code
    "[ password: <secret> ]",
    "token_url: <string>",
    "[ password_file: <filename> ]",
    "export HF_TOKEN=<YOUR READ TOKEN>",
    "docker run -e HF_TOKEN=$token",
    '-H "Authorization: Bearer $ACCESS_TOKEN"',
    'OpenAI(base_url="http://localhost:8080/v1", api_key="")',
    'OpenAI(api_key= "-")',
    "id_token = creds.id_token",
    'password = getpass.getpass("password: ")',
    "token: str",
    'pad_token: "<pad>"',
    "api_key: ${API_KEY}",
    'password: "{{ .Values.password }}"',
    'api_key = "your-api-key"',
    'secret: "xxxxxxxx"',
    '"privateKey": "-----BEGIN PRIVATE KEY-----xxxx"',
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    "That should prompt you for a password:\n\n```\npassword:\n```",
    # e-mail look-alikes
    '"iss": "xxxx@sa.stackit.cloud"',
    "![logo](img/logo@2x.png)",
    "git clone git@github.com:prometheus/prometheus.git",
    "--impersonate-service-account=$SERVICE_ACCOUNT_NAME@$PROJECT_ID.iam.gserviceaccount.com",
    # numbers that fail a checksum or an issuing rule, and ordinary numbers
    "order 4111 1111 1111 1112 (Luhn fails) and 1234567890123456",
    "ref 1234 5678 9012 3456 shipped 2024-03-01",
    "invoice 4111-1111 1111-1111",  # mixed separators
    "IBAN GB82 WEST 1234 5698 7654 33 (check digits fail), GB82WEST12345698765",
    "SSN-like 666-12-3456, 000-12-3456, 912-34-5678, 536-00-1234, 536-22-0000, sample 078-05-1120",
    "NI-like QQ 12 34 56 C, GB123456A, AB 123456 C",
    "DNI-like 12345678A and 1234567Z",
    "SIN-like 130 692 545 and 830-692-544",
    "tracking 1Z999AA10123456784 and ISBN 978-0-306-40615-7",
    "build 20240115T101500Z, snapshot docs_v1-20261204T131456116570",
    # prose that names a key but holds none
    "max token is 512 and the token is used by the tokenizer_v2 model",
    "the password is required; set the api key via settings.api_key_v2_value123",
    "the token is MyTokenizerModel2Large here",
    "version 1.2.3.4567 of the api key manager",
    # key look-alikes
    "the Bearer token authentication scheme",
    "scikit-learn and sk-learn-style models",
    "HF_HUB_ENABLE_HF_TRANSFER=1",
]


@pytest.mark.parametrize(("text", "expected", "counts"), POSITIVE)
def test_redacts_each_kind(text: str, expected: str, counts: dict[str, int]) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.counts == counts
    assert result.total == sum(counts.values())


@pytest.mark.parametrize("text", NEGATIVE)
def test_keeps_look_alikes_and_placeholders(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == {}


def test_counts_every_match_by_tag() -> None:
    text = "a@example.com b@example.com +49 30 1234567 AKIAIOSFODNN7EXAMPLE password: hunter2"
    result = redact(text)
    assert result.counts == {"API_KEY": 1, "EMAIL": 2, "PHONE": 1}  # "hunter2" is not alone on its line
    assert set(result.counts) <= set(TAGS)


def test_key_inside_assignment_counts_once() -> None:
    result = redact('api_key = "sk-abcdefghijklmnopqrstuvwx1234"')
    assert result.text == 'api_key = "[API_KEY]"'
    assert result.counts == {"API_KEY": 1}


@pytest.mark.parametrize("text", [text for text, _, _ in POSITIVE] + NEGATIVE)
def test_idempotent_on_examples(text: str) -> None:
    once = redact(text).text
    again = redact(once)
    assert again.text == once and again.counts == {}


_PIECES = st.sampled_from(
    [
        "a@example.com", "+49 30 1234567", "555-123-4567", "sk-abcdefghijklmnopqrstuvwx1234",
        "AKIAIOSFODNN7EXAMPLE", "Authorization: Bearer ", "Bearer ", "abc123def456ghi789", "password: ",
        "password = ", "token=", '"', "'", "hunter2", "<secret>", "$VAR", "https://user:", "@", "host.com",
        "1.2.3.4", "2024-01-01", " ", "\n", ".", "-", "+", "0", "12", "030", "[EMAIL]", "xxxx",
        "eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxMjM0NTY3In0", "=", "4111 1111 1111 1111", "4111111111111111",
        "GB82 WEST 1234 5698 7654 32", "536-22-1234", "AB 12 34 56 C", "12345678Z", "130 692 544",
        "the API key is ", "password was ", "bearer ", "Tr0ub4dor&3", "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=4), max_size=25).map("".join))
def test_idempotent_on_mixtures(text: str) -> None:
    once = redact(text).text
    assert redact(once).text == once


def test_demo_corpus_redactions_are_the_inspected_ones() -> None:
    """Regression: the demo corpus has 4 e-mail addresses and 1 example password, nothing else."""
    counts: dict[str, int] = {}
    changed: dict[str, list[str]] = {}
    for doc in load_documents(DEMO_CORPUS):
        result = redact(doc.text)
        for kind, n in result.counts.items():
            counts[kind] = counts.get(kind, 0) + n
        if result.counts:
            changed[doc.doc_id] = sorted(result.counts)
    assert counts == {"EMAIL": 4, "SECRET": 1}
    assert changed == {
        "prometheus-docs/docs/guides/contributing": ["EMAIL"],
        "prometheus-docs/docs/operating/security": ["EMAIL"],
        "prometheus-server/docs/configuration/configuration": ["EMAIL", "SECRET"],
    }
