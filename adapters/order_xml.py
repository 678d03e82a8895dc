"""The XML codec of orders, receipts and acknowledgements (contract: adapters/soap/orders.xsd).

Pure functions between bytes (or lxml elements) and the canonical models of schemas.orders,
shared by the SOAP transport (bodies) and the SFTP channel (order and ack files). Element names
are the models' field names; identity numbers travel as plain digits.

Partner XML is parsed with one hardened parser (no DTD, no entities, no network, a size limit)
and validated against the XSD before it becomes a model. Every failure is `Rejected`, with
`where` naming the line and the element ("line 3: person/personnummer"); reasons never echo a
value, so they can be logged and shown.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from core.errors import Rejected
from schemas.orders import Order, OrderAcknowledgement, OrderReceipt

NS = "urn:casehub:lov:orders:1"
XSD_PATH = Path(__file__).parent / "soap" / "orders.xsd"
MAX_BYTES = 1_048_576
"""The default size limit of a document: orders are a few kilobytes."""

LISTS = {"services": "service"}
"""Fields holding a list, and the element name of one item inside the field's element."""

_COLLAPSED = frozenset(
    {
        "version",
        "effective_date",
        "valid_from",
        "valid_to",
        "hours_per_month",
        "double_staffing",
        "protected_identity",
        "received_at",
    }
)
"""Fields whose XSD type (integer, date, decimal, boolean, dateTime) ignores surrounding whitespace."""

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
)
_DOCTYPE = re.compile(rb"^(\xef\xbb\xbf)?\s*(<\?xml.*?\?>)?(\s|<!--.*?-->|<\?.*?\?>)*<!DOCTYPE", re.S)
"""A DOCTYPE in the prolog of an ASCII-compatible document, found before libxml2 reads its DTD."""
_SCHEMA = etree.XMLSchema(etree.parse(str(XSD_PATH)))
_SCHEMA_LOCK = threading.Lock()  # an XMLSchema keeps the last run's error log on itself

M = TypeVar("M", bound=BaseModel)


def parse(data: bytes, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """The root element of a partner's XML document, parsed safely; Rejected if it is not one."""
    if not isinstance(data, bytes):
        raise Rejected("an XML document is bytes", where="document")
    if len(data) > max_bytes:
        raise Rejected(f"document over {max_bytes} bytes", where="document")
    if _DOCTYPE.match(data):
        raise Rejected("DTD and entities are not allowed", where="DOCTYPE")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise Rejected(f"not well-formed XML: {error.msg}", where=f"line {error.lineno}") from None
    if root.getroottree().docinfo.doctype:  # in another encoding (UTF-16) the prolog check cannot see it
        raise Rejected("DTD and entities are not allowed", where="DOCTYPE")
    return root


def validate(element: etree._Element) -> None:
    """Rejected, naming the line and element of the first error, if `element` breaks the XSD."""
    with _SCHEMA_LOCK:
        if _SCHEMA(element):
            return
        first = _SCHEMA.error_log[0]
    target = element.xpath("." + first.path[2:]) if first.path and first.path.startswith("/*") else []
    where = path_of(target[0], element) if target and isinstance(target[0], etree._Element) else element_name(element)
    raise Rejected(_without_values(first.message), where=f"line {first.line}: {where}")


def read_order(element: etree._Element) -> Order:
    """The Order in an element of the XSD's type Order (`order`, `SubmitOrder`, ...)."""
    return _read(element, Order)


def read_acknowledgement(element: etree._Element) -> OrderAcknowledgement:
    """The acknowledgement in an element of type OrderAcknowledgement (`acknowledgement`, `AcknowledgeOrder`)."""
    return _read(element, OrderAcknowledgement)


def read_receipt(element: etree._Element) -> OrderReceipt:
    """The receipt in an element of type OrderReceipt (`receipt`, `SubmitOrderResponse`, ...)."""
    return _read(element, OrderReceipt)


def decode_order(data: bytes) -> Order:
    """The Order in an order file (root `order`)."""
    return read_order(_root(data, "order"))


def decode_acknowledgement(data: bytes) -> OrderAcknowledgement:
    """The acknowledgement in an ack file (root `acknowledgement`)."""
    return read_acknowledgement(_root(data, "acknowledgement"))


def decode_receipt(data: bytes) -> OrderReceipt:
    """The receipt in a receipt document (root `receipt`)."""
    return read_receipt(_root(data, "receipt"))


def encode_order(order: Order) -> bytes:
    return serialize(element("order", xml_values(order)))


def encode_acknowledgement(ack: OrderAcknowledgement) -> bytes:
    return serialize(element("acknowledgement", xml_values(ack)))


def encode_receipt(receipt: OrderReceipt) -> bytes:
    return serialize(element("receipt", xml_values(receipt)))


def xml_values(document: BaseModel) -> dict[str, Any]:
    """A model's fields as the XSD writes them: text values, nested dicts, lists under their item name.

    The shape zeep takes as keyword arguments, and the one `element` builds. An order for a person
    with protected identity that still carries an address is Rejected: that address never leaves the hub.
    """
    if isinstance(document, Order) and document.person.protected_identity and document.person.address:
        raise Rejected("a person with protected identity has no address in an order", where="person/address")
    return _lexical(document.model_dump())


def element(name: str, values: dict[str, Any]) -> etree._Element:
    """An element `name` of the XSD's namespace holding `values` (see `xml_values`); None is left out."""
    root = etree.Element(f"{{{NS}}}{name}", nsmap={None: NS})
    _fill(root, values)
    return root


def serialize(root: etree._Element) -> bytes:
    """UTF-8 XML with a declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def element_name(node: etree._Element) -> str:
    return etree.QName(node).localname


def path_of(node: etree._Element, top: etree._Element) -> str:
    """`node`'s place below `top`: "person/personnummer", "services/service[2]/code"; `top`'s own name for `top`."""
    parts = []
    while node is not top and node.getparent() is not None:
        parent = node.getparent()
        name = element_name(node)
        same = [child for child in parent if child.tag == node.tag]
        parts.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/".join(reversed(parts)) or element_name(top)


def _root(data: bytes, name: str) -> etree._Element:
    root = parse(data)
    if root.tag != f"{{{NS}}}{name}":
        raise Rejected(f"expected the element {name} of {NS}", where=f"line {root.sourceline}: {root.tag}")
    return root


def _read(element: etree._Element, model: type[M]) -> M:
    validate(element)
    try:
        return model.model_validate(_python(element))
    except ValidationError as error:
        first = error.errors()[0]
        node = _find(element, first["loc"])
        reason = first["msg"].removeprefix("Value error, ")
        raise Rejected(reason, where=f"line {node.sourceline}: {path_of(node, element)}") from None


def _python(node: etree._Element) -> Any:
    """An element as the model validates it: dicts, lists and text (validated by the XSD already)."""
    name = element_name(node)
    if name in LISTS:
        return [_python(child) for child in node]
    if len(node):
        return {element_name(child): _python(child) for child in node}
    text = "".join(node.itertext())
    return text.strip() if name in _COLLAPSED else text


def _find(node: etree._Element, loc: tuple) -> etree._Element:
    """The element a pydantic error location points to, or the nearest one above it that exists."""
    for part in loc:
        found = node[part] if isinstance(part, int) and part < len(node) else node.find(f"{{{NS}}}{part}")
        if found is None:
            break
        node = found
    return node


def _lexical(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            name: {LISTS[name]: _lexical(item)} if name in LISTS else _lexical(item) for name, item in value.items()
        }
    if isinstance(value, list):
        return [_lexical(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):  # and datetime
        return value.isoformat()
    return None if value is None else str(value)


def _fill(parent: etree._Element, values: dict[str, Any]) -> None:
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            child = etree.SubElement(parent, f"{{{NS}}}{name}")
            if isinstance(item, dict):
                _fill(child, item)
                continue
            try:
                child.text = item
            except ValueError:
                raise Rejected(
                    "holds a character XML cannot carry (a control character)", where=path_of(child, _top(child))
                ) from None


def _top(node: etree._Element) -> etree._Element:
    while node.getparent() is not None:
        node = node.getparent()
    return node


def _without_values(message: str) -> str:
    """An XSD error message without the namespace and without the offending value (it may be personal)."""
    message = re.sub(r"^Element '[^']*': ", "", message.strip())
    message = re.sub(r"\[facet '[^']*'\] ", "", message)
    message = re.sub(r"^The value '.*' (is not)", r"The value \1", message, flags=re.S)
    message = re.sub(r"^'.*' (is not a valid value)", r"The value \1", message, flags=re.S)
    return message.replace(f"{{{NS}}}", "")
