"""DataService request checks that need the caller or serve several handlers.

``_data_convert`` turns self-contained message parts into domain values; the
checks here are the rest of reading a DataService request: the organization a
request names must be the caller's, a latest/export request must name its whole
source, ``additional_parameters`` becomes the method parameters rows must match,
and a by-ids request's old- and new-style ids become one scoped list. They live
apart from the handlers so ``data_service`` holds only the serving logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument, PermissionDenied
from cloud.rpc import _data_convert as conv

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.codec import JsonValue
    from cloud.model import Principal, TabularRow
    from protos.gen.google.protobuf import Struct
    from protos.gen.viam.app.data import v1 as data_pb

MAX_IDS = 10_000  # ids one by-ids request may name


def check_org(org_id: str, who: Principal) -> None:
    """Refuses a missing ``organization_id`` or one that is not the caller's."""
    if not org_id:
        raise InvalidArgument("organization_id: required")
    if org_id != who.org_id:
        raise PermissionDenied(f"organization_id: {org_id!r} is not this API key's organization")


def source(part_id: str, name: str, subtype: str, method: str) -> tuple[str, str, str, str]:
    """The (part, resource, subtype, method) a latest/export request names, all required."""
    for field, value in (
        ("part_id", part_id),
        ("resource_name", name),
        ("resource_subtype", subtype),
        ("method_name", method),
    ):
        if not value:
            raise InvalidArgument(f"{field}: required")
        conv.check_text(value, field)
    return part_id, name, subtype, method


def wanted_params(params: Struct | None) -> dict[str, JsonValue] | None:
    """The method parameters rows must have (``None``: any), from ``additional_parameters``."""
    if params is None or not params.fields:
        return None
    try:
        wanted: dict[str, JsonValue] = params.to_dict()
    except ValueError:  # a Value with no kind set
        raise InvalidArgument("additional_parameters: a value has no kind set") from None
    return wanted


def params_match(row: TabularRow, wanted: dict[str, JsonValue] | None) -> bool:
    """Whether ``row``'s method parameters are ``wanted`` (always, when ``None``)."""
    return wanted is None or conv.parameters_json(row.metadata.method_parameters) == wanted


def requested_ids(
    binary_data_ids: Sequence[str], binary_ids: Sequence[data_pb.BinaryId], who: Principal
) -> list[str]:
    """The binary data ids a by-ids request names, old and new style together.

    The deprecated ``BinaryID{file_id, organization_id, location_id}`` maps to
    our id shape ``<org>/<location>/<file_id>`` (an empty organization means the
    caller's); a ``file_id`` that already holds a full id is taken as is.

    Raises:
        InvalidArgument: no ids, too many, or a ``BinaryID`` without the parts
            needed to name an item.
        PermissionDenied: a ``BinaryID`` names another organization.
    """
    ids = [conv.check_text(i, f"binary_data_ids[{n}]") for n, i in enumerate(binary_data_ids)]
    for n, old in enumerate(binary_ids):
        where = f"binary_ids[{n}]"
        org = old.organization_id or who.org_id
        if org != who.org_id:
            raise PermissionDenied(
                f"{where}.organization_id: {org!r} is not this API key's organization"
            )
        if not old.file_id:
            raise InvalidArgument(f"{where}.file_id: required")
        if "/" in old.file_id:
            ids.append(conv.check_text(old.file_id, f"{where}.file_id"))
            continue
        if not old.location_id:
            raise InvalidArgument(f"{where}.location_id: required with a bare file_id")
        ids.append(conv.check_text(f"{org}/{old.location_id}/{old.file_id}", where))
    if not ids:
        raise InvalidArgument("binary_data_ids: at least one id is required")
    if len(ids) > MAX_IDS:
        raise InvalidArgument(f"binary_data_ids: more than {MAX_IDS} ids")
    return ids
