"""TF Serving's errors: a canonical status code name and a message, and the HTTP status its REST API
answers for each code (tensorflow_serving/model_servers/http_server.cc)."""

from __future__ import annotations

HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def invalid_argument(*parts: object) -> ServingError:
    return ServingError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def not_found(*parts: object) -> ServingError:
    return ServingError("NOT_FOUND", "".join(str(p) for p in parts))
