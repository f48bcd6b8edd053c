"""ModelProvider condition types and every reason the operator can write (CamelCase).

docs/troubleshooting.md has one row per reason; tests/unit/test_provider_reasons.py fails when a reason
defined here is missing from it. Add new reasons here, never as string literals elsewhere.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- condition types

READY = "Ready"
SECRETS_RESOLVED = "SecretsResolved"
CERTIFICATE_VALID = "CertificateValid"
ENDPOINT_REACHABLE = "EndpointReachable"
AUTHENTICATED = "Authenticated"
MODEL_AVAILABLE = "ModelAvailable"
TOOL_CALLING_SUPPORTED = "ToolCallingSupported"

# The order of the checks: a failure blocks the ones after it.
CHECKS = (SECRETS_RESOLVED, CERTIFICATE_VALID, ENDPOINT_REACHABLE, AUTHENTICATED, MODEL_AVAILABLE,
          TOOL_CALLING_SUPPORTED)
CONDITION_TYPES = (READY, *CHECKS)

# --------------------------------------------------------------------------- Ready

PROVIDER_READY = "ProviderReady"
PROBING = "Probing"  # the first probe is running

# --------------------------------------------------------------------------- spec

INVALID_SPEC = "InvalidSpec"  # the object does not match the schema (a server without validation)
INVALID_URL = "InvalidURL"
CONFLICTING_CA_SOURCES = "ConflictingCASources"

# --------------------------------------------------------------------------- SecretsResolved

SECRETS_FOUND = "SecretsFound"
NO_SECRETS_REFERENCED = "NoSecretsReferenced"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
SECRET_VALUE_EMPTY = "SecretValueEmpty"
SECRET_VALUE_INVALID = "SecretValueInvalid"  # a line break or non-ASCII character in a header value
SECRET_READ_FAILED = "SecretReadFailed"  # RBAC or API server error
CONFIGMAP_NOT_FOUND = "ConfigMapNotFound"
CONFIGMAP_KEY_NOT_FOUND = "ConfigMapKeyNotFound"

# --------------------------------------------------------------------------- CertificateValid

CERTIFICATE_TRUSTED = "CertificateTrusted"  # handshake verified against the configured CA (+ system)
SYSTEM_TRUST_STORE = "SystemTrustStore"  # https without a configured CA: the system store verified it
NOT_APPLICABLE = "NotApplicable"  # plain http
VERIFICATION_DISABLED = "VerificationDisabled"  # insecureSkipVerify: true
INVALID_CERTIFICATE = "InvalidCertificate"
NOT_A_CERTIFICATE_AUTHORITY = "NotACertificateAuthority"
CERTIFICATE_EXPIRED = "CertificateExpired"
CERTIFICATE_NOT_YET_VALID = "CertificateNotYetValid"
INVALID_CLIENT_CERTIFICATE = "InvalidClientCertificate"
CLIENT_CERTIFICATE_EXPIRED = "ClientCertificateExpired"
UNKNOWN_AUTHORITY = "UnknownAuthority"
HOSTNAME_MISMATCH = "HostnameMismatch"
SERVER_CERTIFICATE_EXPIRED = "ServerCertificateExpired"
SERVER_CERTIFICATE_NOT_YET_VALID = "ServerCertificateNotYetValid"
CLIENT_CERTIFICATE_REQUIRED = "ClientCertificateRequired"  # mTLS server, no client certificate given
CLIENT_CERTIFICATE_REJECTED = "ClientCertificateRejected"  # mTLS server refused the one given
TLS_HANDSHAKE_FAILED = "TLSHandshakeFailed"  # any other TLS failure

# --------------------------------------------------------------------------- EndpointReachable

ENDPOINT_REACHABLE_OK = "EndpointReachable"
CONNECTION_REFUSED = "ConnectionRefused"
CONNECTION_FAILED = "ConnectionFailed"  # reset, unreachable network, proxy error...
DNS_FAILURE = "DNSFailure"
TIMEOUT = "Timeout"
TLS_ERROR = "TLSError"
HTTP_ERROR = "HTTPError"
RATE_LIMITED = "RateLimited"
UNEXPECTED_RESPONSE = "UnexpectedResponse"  # 200 but not OpenAI-shaped JSON

# --------------------------------------------------------------------------- Authenticated

AUTHENTICATED_OK = "Authenticated"
NO_AUTHENTICATION_REQUIRED = "NoAuthenticationRequired"  # no key configured and the server accepts that
INVALID_API_KEY = "InvalidAPIKey"
API_KEY_REQUIRED = "APIKeyRequired"  # 401 and no apiKeySecretRef

# --------------------------------------------------------------------------- ModelAvailable

MODEL_LISTED = "ModelListed"
MODEL_ACCEPTED = "ModelAccepted"  # not in /models (or no /models) but a chat completion with it worked
MODEL_NOT_FOUND = "ModelNotFound"

# --------------------------------------------------------------------------- ToolCallingSupported

TOOL_CALLS_RETURNED = "ToolCallsReturned"
TOOL_CALLS_IGNORED = "ToolCallsIgnored"
TOOL_CALL_REJECTED = "ToolCallRejected"
TOOL_CALL_MALFORMED = "ToolCallMalformed"

# --------------------------------------------------------------------------- blocked (Unknown) checks

SPEC_INVALID = "SpecInvalid"
SECRETS_NOT_RESOLVED = "SecretsNotResolved"
CERTIFICATE_NOT_VALID = "CertificateNotValid"
ENDPOINT_UNREACHABLE = "EndpointUnreachable"
NOT_AUTHENTICATED = "NotAuthenticated"
MODEL_NOT_AVAILABLE = "ModelNotAvailable"

BLOCKED_BY = {
    SECRETS_RESOLVED: SECRETS_NOT_RESOLVED,
    CERTIFICATE_VALID: CERTIFICATE_NOT_VALID,
    ENDPOINT_REACHABLE: ENDPOINT_UNREACHABLE,
    AUTHENTICATED: NOT_AUTHENTICATED,
    MODEL_AVAILABLE: MODEL_NOT_AVAILABLE,
}

# --------------------------------------------------------------------------- events only

CERTIFICATE_EXPIRES_SOON = "CertificateExpiresSoon"

# Reasons that only a user edit can fix (of the spec, or of the referenced Secret/ConfigMap, which the
# operator watches): phase Invalid, no periodic re-probe until something changes.
NEEDS_EDIT = frozenset({
    INVALID_SPEC,
    INVALID_URL,
    CONFLICTING_CA_SOURCES,
    INVALID_CERTIFICATE,
    NOT_A_CERTIFICATE_AUTHORITY,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_NOT_YET_VALID,
    INVALID_CLIENT_CERTIFICATE,
    CLIENT_CERTIFICATE_EXPIRED,
})


_TYPE_NAMES = frozenset({"READY", "SECRETS_RESOLVED", "CERTIFICATE_VALID", "ENDPOINT_REACHABLE", "AUTHENTICATED",
                         "MODEL_AVAILABLE", "TOOL_CALLING_SUPPORTED"})


def all_reasons() -> frozenset[str]:
    """Every reason string defined in this module (the condition type names excluded)."""
    return frozenset(v for k, v in globals().items()
                     if k.isupper() and not k.startswith("_") and isinstance(v, str) and k not in _TYPE_NAMES)
