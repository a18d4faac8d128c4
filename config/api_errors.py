"""One error body for every API failure: {"error": {"code", "message", "fields"}}.

Clients branch on `code` (stable, snake_case), show `message` (translated, fit for a member) and attach `fields`
to form inputs. Domain errors raised by services (members.exceptions.MembersError and any app error carrying
`.code`/`.message`) map to 400, 409 when the request conflicts with what already exists, 403 when it touches someone else's content.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from members import exceptions as members_exceptions

# Domain errors that mean "this already exists / already happened" rather than "your input is wrong".
CONFLICT_CODES = frozenset({"already_owned", "already_subscribed", "coupon_already_used", "coupon_used_up",
                            # money operations (members.commerce.idempotency and the one-per-period constraints)
                            "idempotency_conflict", "request_in_progress", "payment_in_progress",
                            "included_in_membership", "offer_already_accepted", "already_renewed"})
# Domain errors that mean "not yours to change" (community ownership and staff-only moderation).
FORBIDDEN_CODES = frozenset({"not_allowed", "author_deleted", "staff_only"})

_STATUS_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


_DEFAULT_MESSAGES = {
    status.HTTP_404_NOT_FOUND: "Not found.",
    status.HTTP_403_FORBIDDEN: "You do not have permission to perform this action.",
}


def _domain_error_classes() -> tuple[type[Exception], ...]:
    from community import exceptions as community_exceptions

    return (members_exceptions.MembersError, community_exceptions.CommunityError)


def _flatten(detail: Any) -> Any:
    """DRF's nested ErrorDetail lists → plain strings (lists of messages per field, nested dicts kept)."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, _domain_error_classes()):
        code = str(getattr(exc, "code", "error"))
        message = str(getattr(exc, "message", "") or exc)
        http_status = (
            status.HTTP_409_CONFLICT if code in CONFLICT_CODES
            else status.HTTP_403_FORBIDDEN if code in FORBIDDEN_CODES
            else status.HTTP_400_BAD_REQUEST
        )
        return Response(error_body(code, message), status=http_status)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling and logging take over

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            non_field = fields.pop("non_field_errors", None)
            message = non_field[0] if non_field else "Some fields are invalid."
            if non_field:
                fields["non_field_errors"] = non_field
        else:
            items = _flatten(detail if isinstance(detail, list) else [detail])
            fields, message = {"non_field_errors": items}, items[0] if items else "Invalid input."
        response.data = error_body("invalid", message, fields)
        return response

    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # With session auth listed first DRF answers 403; an API client needs 401 to know it should log in.
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = 'Token realm="api"'

    detail = getattr(exc, "detail", None)
    message = str(detail) if detail else str(exc)
    if not message:
        message = _DEFAULT_MESSAGES.get(response.status_code, "Request failed.")
    code = "authentication_failed" if isinstance(exc, exceptions.AuthenticationFailed) else _STATUS_CODES.get(
        response.status_code
    )
    if code is None:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
    fields: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        fields = {"retry_after_seconds": [str(int(exc.wait))]}
    response.data = error_body(code, message, fields)
    return response


# --------------------------------------------------------------------------------------------------------------
# Schema pieces shared by every app's @extend_schema


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`, `coupon_expired`.")
    message = serializers.CharField(help_text="Human-readable, translated message.")
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="Per-field messages for validation errors; empty otherwise."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_EXAMPLES = {
    400: OpenApiExample(
        "Validation error",
        value=error_body("invalid", "Some fields are invalid.", {"period": ['"weekly" is not a valid choice.']}),
        response_only=True, status_codes=["400"],
    ),
    401: OpenApiExample(
        "Not authenticated",
        value=error_body("not_authenticated", "Authentication credentials were not provided."),
        response_only=True, status_codes=["401"],
    ),
    403: OpenApiExample(
        "Forbidden",
        value=error_body("permission_denied", "You do not have permission to perform this action."),
        response_only=True, status_codes=["403"],
    ),
    404: OpenApiExample("Not found", value=error_body("not_found", "Not found."), response_only=True,
                        status_codes=["404"]),
    409: OpenApiExample("Conflict", value=error_body("already_owned", "You already have access to this course."),
                        response_only=True, status_codes=["409"]),
    429: OpenApiExample(
        "Throttled",
        value=error_body("throttled", "Request was throttled. Expected available in 12 seconds.",
                         {"retry_after_seconds": ["12"]}),
        response_only=True, status_codes=["429"],
    ),
}
_DESCRIPTIONS = {
    400: "Invalid input or a domain rule refused the request.",
    401: "Not authenticated.",
    403: "Authenticated but not allowed.",
    404: "No such object (or not yours).",
    409: "Conflicts with the current state.",
    429: "Too many requests.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error responses for @extend_schema(responses={...}); 429 is always possible."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code], examples=[_EXAMPLES[code]])
        for code in (*codes, 429)
    }
