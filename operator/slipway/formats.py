"""The formats admission enforces, written once as regular expressions that three readers share: the CRDs
(an OpenAPI `pattern` or a CEL `matches()` rule, both RE2), the pydantic models' validators (Python `re`),
and the parsers (`slipway.storage.uri`). Standard library only: the storage package and the pipeline steps
import it too.

Only the common subset of RE2 and Python `re` is used (no look-around, no backreferences), so a value
refused here is refused by the API server with the same message, and the other way round.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# --- names and the budget of what is derived from them ---------------------------------------------------
# Every object's name is a DNS-1123 label (≤ 63): it becomes a label value (app.kubernetes.io/instance,
# slipway.dev/pipeline, slipway.dev/endpoint) and a ModelVersion's name is kept in status.champion.
# A ServingEndpoint's name also names its Service, so it is a DNS-1035 label (it starts with a letter).
# A ModelVersion the operator registers is named <modelName>-v<version>: with version ≤ 2^31-1 (10 digits),
# modelName gets 63 - len("-v") - 10 = 51 characters; 50 is the limit. Per-version Deployments and
# Services (<endpoint>-v<version>) and run Jobs shorten a long name to a digest form, so they always fit.
LABEL_VALUE_MAX = 63
NAME_MAX = 63
MAX_VERSION = 2_147_483_647
MODEL_NAME_MAX = 50
assert MODEL_NAME_MAX + len("-v") + len(str(MAX_VERSION)) <= NAME_MAX
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Gateway API's own Hostname pattern (a wildcard may lead).
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

# Printable ASCII without the space: no whitespace, control or non-ASCII character.
PRINTABLE = r"^[!-~]+$"
HTTP_URL = r"^https?://[^/?#\s]+([/?#][!-~]*)?$"

# --- numbers -----------------------------------------------------------------------------------------------
# A decimal written as a string (specs carry no floats): bounded, so no NaN, no infinity, no 300 digits.
DECIMAL = r"^[-+]?[0-9]{1,18}(\.[0-9]{1,18})?([eE][-+]?[0-9]{1,2})?$"
DECIMAL_MAX_LENGTH = 48
# Kubernetes' resource.Quantity, without a sign (requests and limits are not negative).
QUANTITY = r"^([0-9]{1,18}(\.[0-9]{0,9})?|\.[0-9]{1,9})([eE][+-]?[0-9]{1,2}|[KMGTPE]i|[numkMGTPE])?$"
_QUANTITY_SUFFIXES: dict[str, Decimal | int] = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# A metric's name, as TFMA and Keras write them (binary_accuracy, auc, loss/val).
METRIC_NAME = r"^[A-Za-z0-9_][-A-Za-z0-9_.:/]*$"
METRIC_NAME_MAX = 63


def decimal_value(text: str) -> Decimal:
    return Decimal(text)


def quantity_value(text: str) -> Decimal:
    """The value of a Kubernetes quantity (already matching QUANTITY)."""
    match = re.fullmatch(r"([0-9.]+)([eE][+-]?[0-9]+)?([A-Za-z]*)", text)
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    number, exponent, suffix = match.groups()
    try:
        return Decimal(number + (exponent or "")) * _QUANTITY_SUFFIXES[suffix]
    except (InvalidOperation, KeyError) as error:
        raise ValueError(f"{text!r} is not a quantity") from error


# --- durations -----------------------------------------------------------------------------------------
DURATION = r"^(0|[1-9][0-9]{0,6})(s|m|h)$"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> int:
    return int(text[:-1]) * _UNIT_SECONDS[text[-1]]


# --- cron: the five-field syntax a Kubernetes CronJob accepts ------------------------------------------
def _field(value: str) -> str:
    item = rf"(\*|({value})(-({value}))?)(/[1-9][0-9]?)?"
    return rf"{item}(,{item})*"


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "sun|mon|tue|wed|thu|fri|sat"
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + " +".join(
        (
            _field(r"[0-5]?[0-9]"),
            _field(r"[01]?[0-9]|2[0-3]"),
            _field(r"0?[1-9]|[12][0-9]|3[01]"),
            _field(rf"0?[1-9]|1[0-2]|(?i:{_MONTHS})"),
            _field(rf"[0-7]|(?i:{_DAYS})"),
        )
    )
    + ")$"
)
CRON_MAX_LENGTH = 128


def _only(values: str, ranges: bool = True) -> str:
    item = rf"({values})(-({values}))?" if ranges else rf"({values})"
    return rf"{item}(,{item})*"


# Days that no month in the month field has, with any weekday (a restricted weekday fires on its own).
_NEVER_FIRES = (
    rf"^[^ ]+ +[^ ]+ +{_only('30|31')} +{_only(r'0?2|(?i:feb)')} +\*$",
    rf"^[^ ]+ +[^ ]+ +{_only('31')} +{_only(r'0?[2469]|11|(?i:feb|apr|jun|sep|nov)', ranges=False)} +\*$",
)


# --- checks shared by the models and the CRDs --------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """A value must match (or, `forbid`, must not match) `pattern`, when it matches `when`."""

    pattern: str
    message: str
    when: str = ""
    forbid: bool = False

    def holds(self, value: str) -> bool:
        if self.when and search(self.when, value) is None:
            return True
        return (search(self.pattern, value) is None) == self.forbid

    def cel(self) -> str:
        test = f"self.matches({cel_string(self.pattern)})"
        test = f"!{test}" if self.forbid else test
        return f"!self.matches({cel_string(self.when)}) || {test}" if self.when else test

    def rule(self) -> dict[str, str]:
        return {"rule": self.cel(), "message": self.message}


@functools.cache
def _python(pattern: str) -> re.Pattern[str]:
    # RE2's `$` is the end of the text; Python's also matches before a final newline: `\Z` is RE2's `$`.
    return re.compile(pattern.replace("$", r"\Z"))


def search(pattern: str, value: str) -> re.Match[str] | None:
    """`pattern` searched in `value` as RE2 (the API server) searches it."""
    return _python(pattern).search(value)


def cel_string(pattern: str) -> str:
    """A CEL raw string literal holding `pattern` verbatim."""
    if "'" in pattern:
        raise ValueError(f"pattern {pattern!r} has a quote: it cannot be a CEL raw string")
    return f"r'{pattern}'"


def first_problem(value: str, checks: Iterable[Check]) -> str | None:
    return next((check.message for check in checks if not check.holds(value)), None)


CRON_CHECKS = (
    Check(
        CRON,
        "must be a five-field cron expression (minute hour day-of-month month day-of-week, as a "
        "Kubernetes CronJob takes it) or @hourly, @daily, @weekly, @monthly, @yearly",
    ),
    *(Check(p, "never fires: no month in the month field has that day", forbid=True) for p in _NEVER_FIRES),
)

# --- storage URIs ------------------------------------------------------------------------------------------
# s3://<bucket>[/<key>], gs://<bucket>[/<key>], az://<container>[@<account>][/<key>], file:///<absolute path>.
STORAGE_SCHEMES = ("s3", "gs", "az", "file")
_IP = r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+"
_SCHEME = Check(r"^(s3|gs|az|file)://", "must start with s3://, gs://, az:// or file:// (unsupported scheme)")
_SCHEME_OR_HTTPS = Check(
    r"^(s3|gs|az|file|https)://",
    "must start with s3://, gs://, az://, file:// or https:// (unsupported scheme)",
)
URI_CHECKS = (
    _SCHEME,
    Check(PRINTABLE, "must not contain whitespace, control or non-ASCII characters"),
    Check(
        r"^(s3|gs)://[^/]", "missing bucket name (s3://<bucket>/<key>, gs://<bucket>/<key>)", r"^(s3|gs)://"
    ),
    Check(r"^az://[^/@]", "missing container name (az://<container>[@<account>]/<key>)", r"^az://"),
    Check(
        r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)",
        "invalid bucket name: an S3 bucket is 3-63 lowercase letters, digits, dots and dashes, starting "
        "and ending with a letter or digit",
        r"^s3://[^/]",
    ),
    Check(
        rf"^s3://([^/]*\.\.|{_IP}(/|$)|xn--|sthree-|[^/]*(-s3alias|--ol-s3|--x-s3)(/|$))",
        "invalid bucket name: an S3 bucket has no two dots in a row, is no IP address, does not start "
        "with xn-- or sthree- and does not end with -s3alias, --ol-s3 or --x-s3",
        forbid=True,
    ),
    Check(
        r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/|$)",
        "invalid bucket name: a GCS bucket is 3-222 lowercase letters, digits, dots, dashes and "
        "underscores, starting and ending with a letter or digit",
        r"^gs://[^/]",
    ),
    Check(
        rf"^gs://(([^/]*\.)?[^/.]{{64}}|[^/]*\.\.|{_IP}(/|$)|goog|[^/]*g(o|0)(o|0)gle)",
        "invalid bucket name: a GCS bucket's dot-separated parts are at most 63 characters, it is no IP "
        "address and does not start with goog or contain google",
        forbid=True,
    ),
    Check(
        r"^az://[a-z0-9](-?[a-z0-9]){2,62}(@|/|$)",
        "invalid container name: an Azure container is 3-63 lowercase letters, digits and single dashes, "
        "starting and ending with a letter or digit",
        r"^az://[^/@]",
    ),
    Check(
        r"^az://[^/@]*@[a-z0-9]{3,24}(/|$)",
        "invalid storage account: an Azure storage account is 3-24 lowercase letters or digits",
        r"^az://[^/]*@",
    ),
    Check(
        r"^file://(localhost)?/",
        "file:// URIs take no host and an absolute path (file:///absolute/path)",
        r"^file://",
    ),
    Check(r"^file://[^?#%\\]*$", "a file:// path may not hold ?, #, % or \\", r"^file://"),
    Check(r"^[a-z0-9]+://[^/]*/(.*/)?/", "empty path segment ('//')", forbid=True),
    Check(r"^[a-z0-9]+://[^/]*/(.*/)?\.\.?(/|$)", "'.' or '..' path segment", forbid=True),
)
KEY_CHECK = Check(
    r"^[a-z0-9]+://[^/]*/[^/]",
    "must name a path below the bucket or container (a key), not its root",
)
URI_MAX_LENGTH = 2048


def uri_checks(needs_key: bool = False, https: bool = False) -> tuple[Check, ...]:
    """The checks of a storage URI; `needs_key` where it must name an object, `https` where a web URL will
    do too (its host is then not checked here)."""
    checks = (_SCHEME_OR_HTTPS, *URI_CHECKS[1:]) if https else URI_CHECKS
    return (*checks, KEY_CHECK) if needs_key else checks


def uri_problem(uri: str, needs_key: bool = False) -> str | None:
    """Why `uri` is not a storage URI, or None."""
    return first_problem(uri, uri_checks(needs_key))


# --- paths on a node or in a container --------------------------------------------------------------------
# An absolute path without '.' or '..' segments, empty segments or control characters.
_SEGMENT = r"(\.?[^/.\x00-\x1f\x7f]|\.\.[^/\x00-\x1f\x7f])[^/\x00-\x1f\x7f]*"
ABSOLUTE_PATH = rf"^(/|(/{_SEGMENT})+/?)$"
