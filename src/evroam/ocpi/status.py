"""OCPI status codes (status_codes.asciidoc) and the errors that carry them."""

from __future__ import annotations

from enum import IntEnum


class StatusCode(IntEnum):
    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003


class OcpiError(Exception):
    """An error answered as an OCPI envelope.

    The spec forbids an HTTP error for valid JSON that addresses an existing
    resource, so content problems default to HTTP 200 with a 2xxx/3xxx code.
    """

    def __init__(self, status_code: int, message: str, http_status: int = 200, data: object = None) -> None:
        super().__init__(message)
        self.status_code = int(status_code)
        self.message = message
        self.http_status = http_status
        self.data = data


def invalid(message: str) -> OcpiError:
    return OcpiError(StatusCode.INVALID_PARAMETERS, message)


def unauthorized(message: str = "missing or unknown credentials token") -> OcpiError:
    return OcpiError(StatusCode.CLIENT_ERROR, message, http_status=401)


def not_found(message: str = "unknown object") -> OcpiError:
    return OcpiError(StatusCode.CLIENT_ERROR, message, http_status=404)


def method_not_allowed(message: str) -> OcpiError:
    return OcpiError(StatusCode.CLIENT_ERROR, message, http_status=405)
