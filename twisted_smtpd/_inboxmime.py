# -*- test-case-name: tests.test_inboxmime -*-
"""
What the web inbox shows of a message, decoded by the standard library's
C{email} package (policy C{default}: encoded words and UTF-8 addresses
decoded). A message the package cannot make sense of is shown raw, never as
an error: every function here returns something for any bytes.
"""

from __future__ import annotations

import email
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from typing import Any
from weakref import WeakKeyDictionary

from twisted_smtpd._inbox import InboxMessage

__all__ = ["Attachment", "attachment", "detail", "htmlPart", "summary"]

#: The most characters of a header field value put in a summary.
_SUMMARY_LIMIT = 1000


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def _header(parsed: EmailMessage, name: str) -> str:
    """
    A header field's decoded value, or its raw text if it cannot be
    decoded, or C{""} if absent.
    """
    try:
        value = parsed.get(name)
    except Exception:
        raw = [v for k, v in parsed.raw_items() if k.lower() == name.lower()]
        value = raw[0] if raw else None
    return "" if value is None else str(value)


def _partText(part: Any) -> str:
    """
    The text of a text part, decoded with its charset, or as UTF-8 with
    replacement characters when the charset or encoding is broken.
    """
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except Exception:
        pass
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(part.get_payload())


def _attachments(parsed: EmailMessage) -> list[Any]:
    """
    The parts of a message that are not its text or HTML body, in order.
    """
    try:
        return list(parsed.iter_attachments()) if parsed.is_multipart() else []
    except Exception:
        return []


def _allAttachments(parsed: EmailMessage) -> list[Any]:
    """
    Every attachment, nested multiparts included: the parts that are not
    multipart and are neither the text nor the HTML body.
    """
    bodies = {id(_body(parsed, "plain")), id(_body(parsed, "html"))}
    found = []
    try:
        for part in parsed.walk():
            if part.is_multipart() or id(part) in bodies or part is parsed:
                continue
            found.append(part)
    except Exception:
        return _attachments(parsed)
    return found


def _body(parsed: EmailMessage, kind: str) -> Any:
    try:
        return parsed.get_body(preferencelist=(kind,))
    except Exception:
        return None


def _date(parsed: EmailMessage, message: InboxMessage) -> str:
    """
    The message's C{Date:} in ISO 8601, or the time it was received when
    it has none that can be read.
    """
    try:
        value = parsed.get("date")
        when = getattr(value, "datetime", None)
        if when is not None:
            return when.isoformat()
    except Exception:
        pass
    return datetime.fromtimestamp(message.received, timezone.utc).isoformat()


#: The summaries made, for as long as their messages live (an inbox drops
#: them beyond its bound, and the cache must not keep them).
_summaries: WeakKeyDictionary[InboxMessage, dict[str, Any]] = WeakKeyDictionary()


def summary(message: InboxMessage) -> dict[str, Any]:
    """
    What the list of messages shows of one: C{id}, C{from}, C{to}
    (the envelope's, since that is where the message went), C{subject},
    C{date}, C{received}, C{size}, C{attachmentCount}, and the header
    fields C{headerFrom} and C{headerTo}.

    The result is cached per message (they never change), so that listing
    a thousand messages does not parse them all again.
    """
    known = _summaries.get(message)
    if known is None:
        known = _summaries[message] = _summary(message)
    return known


def _summary(message: InboxMessage) -> dict[str, Any]:
    parsed = _parse(message.raw)
    return {
        "id": message.id,
        "from": message.mail_from,
        "to": list(message.rcpt_tos),
        "subject": _header(parsed, "subject")[:_SUMMARY_LIMIT],
        "headerFrom": _header(parsed, "from")[:_SUMMARY_LIMIT],
        "headerTo": _header(parsed, "to")[:_SUMMARY_LIMIT],
        "date": _date(parsed, message),
        "received": datetime.fromtimestamp(message.received, timezone.utc).isoformat(),
        "size": message.size,
        "attachmentCount": len(_allAttachments(parsed)),
    }


def detail(message: InboxMessage) -> dict[str, Any]:
    """
    Everything the message view shows: the summary, the envelope, the
    header fields (decoded), the text and HTML parts, and the attachments
    (C{index}, C{filename}, C{contentType}, C{size}). A message whose MIME
    structure cannot be decoded has C{broken} true and its raw source as
    C{text}.
    """
    result = dict(summary(message))
    result["envelope"] = {
        "mail_from": message.mail_from,
        "rcpt_tos": list(message.rcpt_tos),
        "peer": None if message.peer is None else str(message.peer),
    }
    try:
        result.update(_decoded(_parse(message.raw)))
        result["broken"] = False
    except Exception:
        result.update(
            headers=[],
            text=message.raw.decode("utf-8", "replace"),
            html=None,
            attachments=[],
            broken=True,
        )
    return result


def _decoded(parsed: EmailMessage) -> dict[str, Any]:
    headers = []
    for name, _ in parsed.raw_items():
        headers.append([name, _header(parsed, name)])
    text = _body(parsed, "plain")
    html = _body(parsed, "html")
    if text is None and html is None and not parsed.is_multipart():
        text = parsed
    attachments = []
    for index, part in enumerate(_allAttachments(parsed)):
        data = _payload(part)
        attachments.append(
            {
                "index": index,
                "filename": _filename(part, index),
                "contentType": part.get_content_type(),
                "size": len(data),
            }
        )
    if parsed.defects and text is None and html is None:
        raise ValueError("no readable body")
    return {
        "headers": headers,
        "text": None if text is None else _partText(text),
        "html": None if html is None else _partText(html),
        "attachments": attachments,
    }


def _payload(part: Any) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return part.as_bytes()


def _filename(part: Any, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return name or f"attachment-{index + 1}"


class Attachment:
    """
    One attachment's download: its file name, content type and bytes.
    """

    def __init__(self, filename: str, contentType: str, data: bytes) -> None:
        self.filename = filename
        self.contentType = contentType
        self.data = data


def attachment(message: InboxMessage, index: int) -> Attachment | None:
    """
    The attachment at C{index} (as numbered by L{detail}), or C{None}.
    """
    try:
        parts = _allAttachments(_parse(message.raw))
    except Exception:
        return None
    if not 0 <= index < len(parts):
        return None
    part = parts[index]
    return Attachment(_filename(part, index), part.get_content_type(), _payload(part))


def htmlPart(message: InboxMessage) -> str | None:
    """
    The message's HTML part, or C{None} if it has none.
    """
    try:
        part = _body(_parse(message.raw), "html")
        return None if part is None else _partText(part)
    except Exception:
        return None
