"""Redact PII and secrets from text before it is chunked, embedded and stored.

Each match is replaced by a tag: ``[PRIVATE_KEY]``, ``[TOKEN]``, ``[API_KEY]``, ``[SECRET]``, ``[EMAIL]``,
``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[NATIONAL_ID]``. Keys and tokens are found in configuration and in
prose alike ("the API key is …", "bearer …"). Card numbers, IBANs and national ids count only when their
checksum or issuing rules hold (``identifiers``), so dates, order numbers and phone-like ids stay.
Key-shaped rules run before the ``key = value`` rules, so a key inside an assignment counts once.
Placeholders are left alone: ``<secret>``, ``$VAR``, ``${VAR}``, ``{{ var }}``, ``xxxx``, ``***``, ``...``,
``your-api-key``, and tags already put in by this module (so ``redact`` is idempotent).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ragdeck.console.ingest import identifiers

__all__ = ["TAGS", "Redaction", "redact"]

TAGS = ("PRIVATE_KEY", "TOKEN", "API_KEY", "SECRET", "EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID")


@dataclass(frozen=True)
class Redaction:
    """Redacted text and how many matches of each kind were replaced (only kinds with matches)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All replacements together."""
        return sum(self.counts.values())


_PLACEHOLDER = re.compile(
    r"""^(?:
        <[^<>]*>                                  # <secret>, <YOUR TOKEN>
      | \$\{[^}]*\} | \$\([^)]*\) | \$[A-Za-z_]\w* # ${VAR}, $(cmd), $VAR
      | \{\{.*\}\} | \{[A-Za-z_][\w.]*\}          # {{ var }}, {var}
      | %\(?\w*\)?s                               # %s, %(name)s
      | [xX*•.\-_#?0]+                             # xxxx, ****, ..., ----
      | (?i:your[-_ .].*)                          # your-api-key, YOUR_TOKEN
      | .*(?:xxxx|XXXX|\.\.\.|…).*                 # sk-xxxx, abc...
    )$""",
    re.VERBOSE,
)


_TAG = re.compile(r"\[(?:" + "|".join(TAGS) + r")\]")


def _is_placeholder(value: str) -> bool:
    """Empty, a template or mask (see the module docstring), or already holding a tag."""
    return not value.strip() or bool(_PLACEHOLDER.match(value.strip()) or _TAG.search(value))


# PEM private key blocks (also with JSON-escaped "\n" line ends); a block without key material is an example.
_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----(.{0,16384}?)-----END \1-----", re.DOTALL
)
_PEM_MATERIAL = re.compile(r"[A-Za-z0-9+/=]{24,}")

# JSON web tokens: base64url header and payload (both JSON objects, so "eyJ"), optional signature.
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*(?![\w-])")

# Provider API keys, recognised by their documented prefixes.
_API_KEYS = re.compile(
    r"""(?<![\w-])(?:
        sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}  # OpenAI (and Anthropic)
      | (?:AKIA|ASIA)[0-9A-Z]{16}                                          # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{30,}                                         # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,}                                       # GitHub fine-grained
      | xox[abpr]-[A-Za-z0-9-]{10,}                                        # Slack
      | AIza[0-9A-Za-z_-]{35}                                              # Google
      | hf_[A-Za-z0-9]{30,}                                                # Hugging Face
      | (?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}                          # Stripe secret / restricted
      | glpat-[A-Za-z0-9_-]{20,}                                           # GitLab personal token
      | npm_[A-Za-z0-9]{36}                                                # npm
      | SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}                         # SendGrid
    )(?![\w-])""",
    re.VERBOSE,
)

# Authorization header values: "Authorization: Bearer <token>" / "Basic <base64>"; a bare "Bearer <token>"
# only when the token looks like one (20+ characters with letters and digits).
_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
_AUTH_HEADER = re.compile(
    rf"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?\s*(?:bearer|basic|token)\s+)({_TOKEN68})"
)
_BARE_BEARER = re.compile(
    r"(\b(?i:bearer)\s+)(?=[^\s]*\d)(?=[^\s]*[A-Za-z])([A-Za-z0-9\-._~+/]{20,}=*)(?![\w\-.~+/])"
)

# Keys and tokens named in prose: "the API key is 3f9a…", "AWS secret access key wJalr…", "token was …",
# "password is S3cr3t!x": the value after the name (and an optional "is" / "was" / ":" / "=") when it looks
# like a credential (see _prose_secret).
_PROSE_SECRET = re.compile(
    r"""(?ix)\b(
        (?:aws[ _-]?)?secret[ _-]?access[ _-]?key | access[ _-]?key(?:[ _-]?id)? | api[ _-]?key
      | secret[ _-]?key | client[ _-]?secret | (?:access|auth|bearer|api|refresh)[ _-]?token | token
      | password | passwd | passphrase
    )\b((?:\s+(?:is|was|of|=|:)|\s*[:=])?\s*(?:set\s+to\s+)?[`"'(]?)
    ([A-Za-z0-9][A-Za-z0-9_\-+/=.!@#%^&*~]{7,})"""
)

# Credentials in URLs: scheme://user:password@host.
_URL_PASSWORD = re.compile(r"(?<=://)([^\s/:@\[\]]+:)([^\s/@\[\]]+)(?=@)")

# key = "value" / key: value assignments whose key names a secret; only the value is replaced.
_SECRET_KEY = (
    r"(?:[A-Za-z_][\w.-]*?)?"
    r"(?:password|passwd|pwd|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key)"
)
_QUOTED_ASSIGNMENT = re.compile(
    rf"""(?ix)(?<![\w.-])({_SECRET_KEY})(["']?\s*(?::|=|:=|=>)\s*)(?:"([^"\n]*)"|'([^'\n]*)')"""
)
# Unquoted values: YAML "key: value" or env "KEY=value" alone on their line (or before a comment / "]").
_BARE_ASSIGNMENT = re.compile(
    rf"""(?imx)^([ \t]*(?:[-\[][ \t]*|export[ \t]+)?)({_SECRET_KEY})([ \t]*:[ \t]+|[ \t]*=[ \t]*)
        ([^\s"'<>{{}}\[\](),;#`|$][^\s"'<>{{}}\[\](),;#`|]*)(?=[ \t]*(?:\#.*|\])?[ \t]*$)"""
)
# An unquoted value after "=" counts when it looks like a credential (a letter and a digit, 8+ characters, not
# a dotted name such as "creds.id_token" nor a call).
_TOKEN_LIKE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])(?![A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$)[^()]{8,}$")
_NOT_SECRET_KEYS = re.compile(
    r"(?i)(?:^|[_.-])(?:pad|eos|bos|unk|cls|sep|mask|start|end|max|min|num|total|input|output|prompt|special)"
    r"[_.-]?tokens?$"
)
_NOT_SECRET_VALUES = re.compile(
    r"(?i)^(?:true|false|yes|no|on|off|null|none|nil|~|str|string|bytes|int|bool|boolean|secret|secretstr|"
    r"password|token|required|optional|redacted|hidden|masked|\d{1,3})$"
)

# E-mail addresses; not "name@2x.png" image names nor "git@host:path" remotes.
_EMAIL = re.compile(
    r"(?<![\w.%+-])([A-Za-z0-9][A-Za-z0-9._%+-]*)@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))"
    r"(?![\w-]|:[\w~/])"
)
_NOT_EMAIL_TLDS = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp"}

# Phone numbers: international "+CC ..." forms and national forms with separators (NANP with - or .,
# trunk-prefixed European numbers); never bare digit runs, dotted versions, IPs, times or values.
_PHONE = re.compile(
    r"""(?x)(?<![\w.+/:=-])(?:
        \+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}                  # +49 30 1234567
      | (?:1[ .-])?\(\d{3}\)[ ]?\d{3}[ .-]\d{4}                                # (555) 123-4567
      | (?:1([.-]))?\d{3}([.-])\d{3}\2\d{4}                                     # 555-123-4567, 1-800-555-1234
      | 0[1-9](?:[ .-]\d{2}){4}                                                # 01 23 45 67 89
      | 0[1-9]\d{1,3}(?:[ /-]\d{3,8})(?:[ -]\d{2,4}){0,2}                      # 030 1234567, 020 7946 0958
    )(?![\w+]|[.,:/-]\d)"""
)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _pem(match: re.Match[str]) -> str | None:
    return "[PRIVATE_KEY]" if _PEM_MATERIAL.search(match.group(2)) else None


def _api_key(match: re.Match[str]) -> str | None:
    key = match.group(0)
    if _is_placeholder(key) or len(set(key.split("_", 1)[-1].split("-", 1)[-1])) < 6:
        return None
    if key.startswith("sk-") and not re.search(r"\d", key):
        return None  # "sk-" + words is a name (sk-learn-...), not a key
    return "[API_KEY]"


def _auth_header(match: re.Match[str]) -> str | None:
    token = match.group(2)
    if _is_placeholder(token) or len(token) < 8:
        return None
    return match.group(1) + "[TOKEN]"


def _bare_bearer(match: re.Match[str]) -> str | None:
    return None if _is_placeholder(match.group(2)) else match.group(1) + "[TOKEN]"


def _mixed_case(value: str) -> bool:
    return any(c.isupper() for c in value) and any(c.islower() for c in value)


def _prose_secret(match: re.Match[str]) -> tuple[str, str] | None:
    name, sep, value = match.groups()
    value = value.rstrip(".,;:!)'\"`")
    if _is_placeholder(value) or _NOT_SECRET_VALUES.match(value) or _NOT_SECRET_KEYS.search(name):
        return None
    digits, letters = _digits(value), sum(c.isalpha() for c in value)
    password = name.lower().startswith("pass")
    if password:
        if len(value) < 8 or not (digits and letters) or value.isalpha():
            return None
    elif (
        len(value) < 16
        or letters < 3
        or not (digits >= 3 or (digits and len(value) >= 30 and _mixed_case(value)))
    ):
        return None  # "token is used by the tokenizer", "max token is 512", dotted or short words
    if re.fullmatch(r"[a-z]+(?:[_.-][a-z0-9]+)+", value) or re.fullmatch(r"v?\d+(?:\.\d+)+", value):
        return None  # snake_case / dotted names and version numbers
    kind = "SECRET" if password else _kind_for_key(re.sub(r"(?i)[ _-]?id$", "", name).replace(" ", "_"))
    trailing = match.group(3)[len(value) :]
    return f"{name}{sep}[{kind}]{trailing}", kind


def _url_password(match: re.Match[str]) -> str | None:
    return None if _is_placeholder(match.group(2)) else match.group(1) + "[SECRET]"


def _kind_for_key(key: str) -> str:
    normal = re.sub(r"[_.-]", "", key.lower())
    if normal.endswith(("apikey", "accesskey")):
        return "API_KEY"
    if normal.endswith("privatekey"):
        return "PRIVATE_KEY"
    if normal.endswith("token"):
        return "TOKEN"
    return "SECRET"


def _quoted_assignment(match: re.Match[str]) -> tuple[str, str] | None:
    key, sep = match.group(1), match.group(2)
    value = match.group(3) if match.group(3) is not None else match.group(4)
    if _NOT_SECRET_KEYS.search(key) or _is_placeholder(value):
        return None
    quote = '"' if match.group(3) is not None else "'"
    kind = _kind_for_key(key)
    return f"{key}{sep}{quote}[{kind}]{quote}", kind


def _bare_assignment(match: re.Match[str]) -> tuple[str, str] | None:
    lead, key, sep, value = match.groups()
    if _NOT_SECRET_KEYS.search(key) or _NOT_SECRET_VALUES.match(value) or _is_placeholder(value):
        return None
    if "=" in sep and not (sep == "=" and key.isupper()) and not _TOKEN_LIKE.match(value):
        return None  # "token = creds.id_token" in code is an expression; env files use upper-case names
    kind = _kind_for_key(key)
    return f"{lead}{key}{sep}[{kind}]", kind


def _email(match: re.Match[str]) -> str | None:
    local, tld = match.group(1), match.group(3).lower()
    if tld in _NOT_EMAIL_TLDS or _is_placeholder(local):
        return None
    return "[EMAIL]"


def _phone(match: re.Match[str]) -> str | None:
    number = match.group(0)
    digits = _digits(number)
    if number.startswith("+"):
        return "[PHONE]" if 8 <= digits <= 15 else None
    return "[PHONE]" if 9 <= digits <= 13 else None


Replacer = Callable[[re.Match[str]], "str | tuple[str, str] | None"]

# (kind, pattern, replacer): a replacer returns the replacement (or replacement and kind), None to keep.
_RULES: tuple[tuple[str, re.Pattern[str], Replacer], ...] = (
    ("PRIVATE_KEY", _PEM, _pem),
    ("TOKEN", _JWT, lambda m: "[TOKEN]"),
    ("API_KEY", _API_KEYS, _api_key),
    ("TOKEN", _AUTH_HEADER, _auth_header),
    ("TOKEN", _BARE_BEARER, _bare_bearer),
    ("SECRET", _URL_PASSWORD, _url_password),
    ("SECRET", _QUOTED_ASSIGNMENT, _quoted_assignment),
    ("SECRET", _BARE_ASSIGNMENT, _bare_assignment),
    ("SECRET", _PROSE_SECRET, _prose_secret),
    ("CARD", identifiers.CARD, identifiers.card),
    ("IBAN", identifiers.IBAN, identifiers.iban),
    ("NATIONAL_ID", identifiers.NATIONAL_ID, identifiers.national_id),
    ("EMAIL", _EMAIL, _email),
    ("PHONE", _PHONE, _phone),
)


def redact(text: str) -> Redaction:
    """Replace PII and secrets in ``text`` with tags and count them by kind.

    Kinds: PRIVATE_KEY (PEM blocks with key material), TOKEN (JWTs, Authorization header values, bare
    ``Bearer`` tokens, ``*token`` assignments), API_KEY (OpenAI ``sk-``, AWS ``AKIA``/``ASIA``, GitHub
    ``ghp_``/``gho_``/``github_pat_``, Slack ``xox[abpr]-``, Google ``AIza``, Hugging Face ``hf_``,
    ``*api_key`` assignments), SECRET (password / secret values in ``key = "value"``, ``key: value``,
    ``KEY=value`` and URL ``user:password@``; keys, tokens and passwords named in prose), EMAIL, PHONE (``+``
    international forms; national forms with separators), CARD, IBAN, NATIONAL_ID (checksum-validated, see
    ``identifiers``). Placeholders are kept. Idempotent: ``redact(redact(t).text).text == redact(t).text``.
    """
    counts: Counter[str] = Counter()
    for default_kind, pattern, replacer in _RULES:

        def substitute(match: re.Match[str], kind: str = default_kind, replacer: Replacer = replacer) -> str:
            result = replacer(match)
            if result is None:
                return match.group(0)
            if isinstance(result, tuple):
                result, kind = result
            counts[kind] += 1
            return result

        text = pattern.sub(substitute, text)
    return Redaction(text, dict(sorted(counts.items())))
